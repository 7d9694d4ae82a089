"use strict";
exports.id = 15;
exports.ids = [15];
exports.modules = {

/***/ 3015:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {

// ESM COMPAT FLAG
__webpack_require__.r(__webpack_exports__);

// EXPORTS
__webpack_require__.d(__webpack_exports__, {
  runStoreCommand: () => (/* binding */ runStoreCommand)
});

// EXTERNAL MODULE: external "node:child_process"
var external_node_child_process_ = __webpack_require__(1421);
// EXTERNAL MODULE: external "node:fs"
var external_node_fs_ = __webpack_require__(3024);
// EXTERNAL MODULE: ./src/image/store.ts
var image_store = __webpack_require__(2448);
// EXTERNAL MODULE: ./src/privilege/userns.ts
var userns = __webpack_require__(9859);
// EXTERNAL MODULE: ./src/store/inventory.ts
var inventory = __webpack_require__(1201);
// EXTERNAL MODULE: ./src/store/prune.ts
var prune = __webpack_require__(741);
// EXTERNAL MODULE: external "node:path"
var external_node_path_ = __webpack_require__(6760);
// EXTERNAL MODULE: ./src/image/layout.ts
var image_layout = __webpack_require__(6727);
// EXTERNAL MODULE: ./src/image/erofs/entry.ts + 2 modules
var entry = __webpack_require__(9066);
// EXTERNAL MODULE: ./src/util/disk-usage.ts
var disk_usage = __webpack_require__(497);
// EXTERNAL MODULE: ./src/util/fs.ts
var fs = __webpack_require__(1917);
// EXTERNAL MODULE: ./src/store/remove.ts
var remove = __webpack_require__(6245);
;// CONCATENATED MODULE: ./src/store/verify.ts
/**
 * `build-cell store verify`: every image of the store checked, and what is broken removed
 * (unless a cell or session holds it), so that the next run prepares it afresh.
 *
 *   layout  its record, an index naming a manifest, the manifest's config and layers present,
 *           every blob's sha256 its name
 *   rootfs  its completeness marker (the sentinel, written before it was renamed into place),
 *           and as many entries as it had when it was made (a half-removed one has lost some)
 *   erofs   its record, its size and every chunk's sha256
 *   mount   its sentinel
 */









async function verifyStore(store, options = {}) {
    const { images } = await (0,inventory/* readInventory */.zw)(store, { sizes: false });
    const report = { checked: images.length, broken: [] };
    for (const image of images) {
        const problems = await imageProblems(store, image);
        if (!problems.length)
            continue;
        const outcome = await (0,remove/* removeImage */.a)(store, image.entry, options.ids);
        const { entry, arch, digest, references, installKeys } = image;
        report.broken.push({
            entry,
            arch,
            digest,
            references,
            installKeys,
            problems,
            removed: outcome.removed,
            ...(outcome.removed ? {} : { kept: outcome.why }),
        });
    }
    return report;
}
async function imageProblems(store, image) {
    const paths = store.partPaths(image.entry);
    const checks = {
        layout: () => layoutProblems(paths.layout[0]),
        rootfs: () => rootfsProblems(store, image.entry, paths.rootfs[0]),
        erofs: async () => {
            const problem = await (0,entry/* erofsEntryProblem */.p5)(store, (0,inventory/* entryArch */.vu)(image.entry), image.digest);
            return problem ? [problem] : [];
        },
        mount: async () => ((0,external_node_fs_.existsSync)((0,external_node_path_.join)(paths.mount[0], image_store/* ROOT_SENTINEL */.c_)) ? [] : [`${paths.mount[0]} has no sentinel`]),
    };
    const problems = [];
    for (const part of image.parts)
        problems.push(...(await checks[part]()));
    return problems;
}
/** A layout's record, index, manifest and blobs. */
async function layoutProblems(layout) {
    if (!(0,external_node_fs_.existsSync)((0,external_node_path_.join)(layout, image_store/* LAYOUT_RECORD */.Td)))
        return [`the layout ${layout} has no ${image_store/* LAYOUT_RECORD */.Td} (it was never completed)`];
    const problems = [];
    try {
        const index = JSON.parse((0,external_node_fs_.readFileSync)((0,external_node_path_.join)(layout, 'index.json'), 'utf8'));
        const manifest = JSON.parse((0,external_node_fs_.readFileSync)((0,image_layout/* blobPath */.nD)(layout, index.manifests[0].digest), 'utf8'));
        for (const { digest } of [manifest.config, ...manifest.layers])
            if (!(0,external_node_fs_.existsSync)((0,image_layout/* blobPath */.nD)(layout, digest)))
                problems.push(`the layout ${layout} lacks the blob ${digest}`);
    }
    catch (error) {
        problems.push(`the layout ${layout} has no readable index and manifest (${error.message})`);
    }
    const blobs = (0,external_node_path_.join)(layout, 'blobs', 'sha256');
    for (const name of (0,inventory/* listDir */.ol)(blobs)) {
        const actual = await (0,fs/* sha256File */.Q3)((0,external_node_path_.join)(blobs, name)).catch(() => 'unreadable');
        if (actual !== name)
            problems.push(`the blob sha256:${name} of ${layout} has sha256 ${actual}`);
    }
    return problems;
}
/** A rootfs's sentinel, and its entry count against the one recorded when it was made. */
async function rootfsProblems(store, entry, rootfs) {
    if (!(0,external_node_fs_.existsSync)((0,external_node_path_.join)(rootfs, image_store/* ROOT_SENTINEL */.c_)))
        return [`the rootfs ${rootfs} has no ${image_store/* ROOT_SENTINEL */.c_} (it is incomplete, or half removed)`];
    const made = (await store.readSize('rootfs', entry))?.made;
    if (made === undefined)
        return [];
    const entries = (0,disk_usage/* diskUsage */.hh)(rootfs).entries;
    return entries === made ? [] : [`the rootfs ${rootfs} has ${entries} entries, it had ${made} when it was made`];
}

// EXTERNAL MODULE: ./src/util/errors.ts
var errors = __webpack_require__(17);
;// CONCATENATED MODULE: ./src/cli/store-format.ts

/** 1.2 GB, 345 MB, 12 kB (powers of 1000, as du -h --si and docker say them). */
function formatBytes(bytes) {
    const units = ['B', 'kB', 'MB', 'GB', 'TB'];
    let value = bytes;
    let unit = 0;
    while (value >= 1000 && unit < units.length - 1) {
        value /= 1000;
        unit++;
    }
    return `${unit === 0 || value >= 100 ? Math.round(value) : value.toFixed(1)} ${units[unit]}`;
}
/** How an image is named: its references, its install keys (and base), or none. */
function imageName(image) {
    const names = [
        ...image.references,
        ...image.installKeys.map((key) => `install ${key.slice(0, 12)}${image.base ? ` on ${image.base.slice(0, 19)}` : ''}`),
    ];
    return names.join(', ') || '(no reference)';
}
function inventoryJson(inventory) {
    return {
        stateDir: inventory.stateDir,
        images: inventory.images.map((image) => ({
            arch: image.arch,
            digest: image.digest,
            references: image.references,
            installKeys: image.installKeys,
            derived: !!image.base || image.installKeys.length > 0,
            ...(image.base ? { base: image.base } : {}),
            parts: image.parts,
            size: image.bytes,
            unique: image.unique,
            lastUsed: new Date(image.lastUsed).toISOString(),
            inUse: image.holders.length > 0,
            holders: image.holders.map((holder) => holder.kind === 'cell' ? { kind: 'cell', pid: holder.pid } : { kind: 'session', dir: holder.dir }),
            entry: image.entry,
        })),
        total: inventory.bytes,
        ...(inventory.stateDirBytes !== undefined ? { stateDirBytes: inventory.stateDirBytes } : {}),
        free: inventory.filesystem.free,
        filesystemSize: inventory.filesystem.size,
    };
}
function inventoryTable(inventory) {
    const rows = [['IMAGE', 'ARCH', 'DIGEST', 'SIZE', 'UNIQUE', 'LAST USED', 'IN USE']];
    for (const image of inventory.images) {
        rows.push([
            imageName(image),
            image.arch,
            image.digest.slice(0, 19),
            formatBytes(image.bytes),
            formatBytes(image.unique),
            new Date(image.lastUsed).toISOString().slice(0, 16).replace('T', ' '),
            image.holders.map(remove/* describeHolder */.s).join(', ') || '-',
        ]);
    }
    const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
    const lines = rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]))).join('  '));
    const { filesystem } = inventory;
    const whole = inventory.stateDirBytes !== undefined ? ` (the state dir: ${formatBytes(inventory.stateDirBytes)})` : '';
    lines.push(`total ${formatBytes(inventory.bytes)} in ${inventory.images.length} image(s), hard links counted once${whole}; ${formatBytes(filesystem.free)} free of ${formatBytes(filesystem.size)} on the filesystem of ${inventory.stateDir}`);
    return `${lines.join('\n')}\n`;
}

;// CONCATENATED MODULE: ./src/cli/store.ts
/**
 * `build-cell store list|prune|verify`: the store's upkeep (src/store/), printed as a table or
 * as JSON. A store root owns (the engine ran through sudo) is looked after through `sudo -n`;
 * a rootless user's own store without it.
 */









async function runStoreCommand(command, log) {
    if (needsSudo(command.stateDir))
        return throughSudo(command, log);
    const store = new image_store/* Store */.il(command.stateDir);
    const ids = process.getuid?.() !== 0 ? (0,userns/* probeUserns */.nD)().ids : undefined;
    switch (command.action) {
        case 'list':
            return print(command, await (0,inventory/* readInventory */.zw)(store, { whole: true }), listText, inventoryJson);
        case 'prune': {
            const { olderThanMs, maxBytes, all, dryRun } = command;
            return print(command, await (0,prune/* pruneStore */.I9)(store, { olderThanMs, maxBytes, all, dryRun, ids }), pruneText);
        }
        case 'verify': {
            const report = await verifyStore(store, { ids });
            print(command, report, verifyText);
            // The store is whole unless a broken image is still in use (kept until it is free).
            return report.broken.some((b) => !b.removed) ? 1 : 0;
        }
    }
}
function print(command, report, text, json) {
    process.stdout.write(command.json ? `${JSON.stringify(json ? json(report) : report, null, 2)}\n` : text(report));
    return 0;
}
/** Root's store (made by cells through sudo), and this user is not root. */
function needsSudo(stateDir) {
    if (process.getuid?.() === 0)
        return false;
    try {
        return (0,external_node_fs_.statSync)(`${stateDir}/images`).uid === 0;
    }
    catch {
        return false;
    }
}
function throughSudo(command, log) {
    const argv = [process.argv[1], ...command.argv, '--state-dir', command.stateDir];
    log(`the store ${command.stateDir} is root's: through sudo -n`);
    const result = (0,external_node_child_process_.spawnSync)('sudo', ['-n', process.execPath, ...argv], { stdio: 'inherit' });
    if (result.error || result.status === null)
        throw new errors/* CellSetupError */.Y1(`the store ${command.stateDir} is root's, and sudo -n could not run build-cell: ${result.error?.message ?? `signal ${result.signal}`}`);
    return result.status;
}
function listText(inventory) {
    return inventoryTable(inventory);
}
function pruneText(report) {
    const verb = report.dryRun ? 'would remove' : 'removed';
    const lines = report.removed.map((i) => `${verb} ${imageName(i)} ${i.arch} ${i.digest.slice(0, 19)} (${formatBytes(i.bytes)}, last used ${i.lastUsed})`);
    for (const kept of report.kept)
        lines.push(`kept ${kept.entry}: ${kept.why}`);
    for (const cell of report.cells)
        lines.push(`${verb} the scratch of a dead cell ${cell.dir} (${formatBytes(cell.bytes)})`);
    for (const temp of report.temporaries)
        lines.push(`${verb} the stale temporary ${temp.path} (${formatBytes(temp.bytes)})`);
    lines.push(`${report.dryRun ? 'would free' : 'freed'} ${formatBytes(report.freed)}; images: ${formatBytes(report.before)} -> ${formatBytes(report.after)}`);
    return `${lines.join('\n')}\n`;
}
function verifyText(report) {
    const lines = report.broken.map((b) => {
        const name = imageName(b);
        const fate = b.removed ? 'removed (the next run prepares it afresh)' : `kept: ${b.kept}`;
        return `broken: ${name} ${b.arch} ${b.digest}: ${b.problems.join('; ')}; ${fate}`;
    });
    lines.push(`checked ${report.checked} image(s): ${report.broken.length ? `${report.broken.length} broken` : 'all whole'}`);
    return `${lines.join('\n')}\n`;
}


/***/ })

};
;