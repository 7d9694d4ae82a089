/**
 * Small pieces the engine's entry (engine.ts) and its cell lifecycle (engine-cell.ts) share.
 */
import { decideEmulation, describeDecision } from './emulation/native.js';
import type { EmulationOptions } from './emulation/setup.js';
import { probeUserns } from './privilege/userns.js';
import { randomHex } from './util/random.js';
import type { CellRequest, CellRunResult } from './engine-types.js';

export function newCellId(): string {
  return `${Date.now().toString(36)}-${randomHex(4)}`;
}

export function emulationOptions(request: CellRequest): EmulationOptions {
  return { mode: request.emulation, qemuPath: request.qemu?.path, qemuCpu: request.qemuCpu };
}

/** What the result says of emulation: native or qemu and why, the mode, the qemu build chosen. */
export function emulationReport(
  request: CellRequest,
): Pick<CellRunResult, 'emulated' | 'emulationDecision' | 'emulationMode' | 'qemu'> {
  const decision = decideEmulation(request.image.arch, request.emulation);
  return {
    emulated: decision.emulated,
    emulationDecision: describeDecision(request.image.arch, decision),
    emulationMode: request.emulation ?? 'auto',
    ...(decision.emulated && request.qemu ? { qemu: request.qemu.choice } : {}),
  };
}

/** Rootless: the ids a cell maps (subordinate ranges, or root alone); undefined as root. */
export function rootlessIds() {
  return process.getuid?.() !== 0 ? probeUserns().ids : undefined;
}
