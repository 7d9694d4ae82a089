/**
 * Image references as skopeo understands them. A bare `name[:tag][@digest]` means `docker://`.
 */
import { UserError, show } from '../util/errors.js';

export const TRANSPORTS = [
  'docker://',
  'oci:',
  'oci-archive:',
  'docker-archive:',
  'dir:',
  'containers-storage:',
] as const;

/** skopeo transports build-cell does not take (they would otherwise read as Docker Hub names). */
const UNSUPPORTED_TRANSPORTS = ['docker-daemon:', 'ostree:', 'sif:', 'tarball:'];

export interface ImageReference {
  /** The reference as given. */
  original: string;
  /** The full skopeo reference, with its transport. */
  full: string;
  transport: 'docker' | 'oci' | 'oci-archive' | 'docker-archive' | 'dir' | 'containers-storage';
  /** For docker://: the digest the reference is pinned to, if any. */
  pinnedDigest?: string;
}

export function parseReference(value: string, field = 'image'): ImageReference {
  const ref = value.trim();
  if (!ref)
    throw new UserError(field, 'must name an image, e.g. debian:bookworm or docker://registry.example/app@sha256:...');
  if (/[\s\0]/.test(ref)) throw new UserError(field, `must not contain whitespace or NUL: ${show(value)}`);
  const transport = TRANSPORTS.find((t) => ref.startsWith(t));
  if (!transport) {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(ref) || UNSUPPORTED_TRANSPORTS.some((t) => ref.startsWith(t))) {
      throw new UserError(
        field,
        `unsupported transport in ${show(ref)}: accepted are ${TRANSPORTS.join(', ')} or a bare name:tag`,
      );
    }
    return { ...parseReference(`docker://${ref}`, field), original: value };
  }
  const rest = ref.slice(transport.length);
  if (!rest) throw new UserError(field, `${show(ref)} names no image after ${transport}`);
  const kind = transport.replace(/:(\/\/)?$/, '') as ImageReference['transport'];
  const result: ImageReference = { original: value, full: ref, transport: kind };
  if (kind === 'docker') {
    const at = rest.indexOf('@');
    if (at >= 0) {
      const digest = rest.slice(at + 1);
      if (!/^sha256:[a-f0-9]{64}$/.test(digest))
        throw new UserError(field, `has a malformed digest ${show(digest)}: expected sha256:<64 hex digits>`);
      result.pinnedDigest = digest;
    }
  }
  return result;
}

/** `docker://host/repo:tag@sha256:x` -> `docker://host/repo@DIGEST`: pull exactly one manifest. */
export function dockerReferenceByDigest(ref: ImageReference, digest: string): string {
  let name = ref.full.slice('docker://'.length);
  const at = name.indexOf('@');
  if (at >= 0) name = name.slice(0, at);
  const lastSlash = name.lastIndexOf('/');
  const colon = name.indexOf(':', lastSlash + 1);
  if (colon >= 0) name = name.slice(0, colon);
  return `docker://${name}@${digest}`;
}
