export const id = 893;
export const ids = [893];
export const modules = {

/***/ 81893:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {


// EXPORTS
__webpack_require__.d(__webpack_exports__, {
  capStore: () => (/* binding */ capStore)
});

// EXTERNAL MODULE: ./src/util/timing.ts
var timing = __webpack_require__(50620);
// EXTERNAL MODULE: external "node:fs"
var external_node_fs_ = __webpack_require__(73024);
// EXTERNAL MODULE: external "node:path"
var external_node_path_ = __webpack_require__(76760);
// EXTERNAL MODULE: ./src/cell/stage.ts + 1 modules
var stage = __webpack_require__(70672);
// EXTERNAL MODULE: ./src/cell/cell-owner.ts
var cell_owner = __webpack_require__(77812);
// EXTERNAL MODULE: ./src/image/store.ts
var image_store = __webpack_require__(2448);
// EXTERNAL MODULE: ./src/image/usage.ts
var usage = __webpack_require__(94870);
// EXTERNAL MODULE: ./src/util/disk-usage.ts
var disk_usage = __webpack_require__(40497);
// EXTERNAL MODULE: ./src/util/lock.ts
var util_lock = __webpack_require__(99045);
// EXTERNAL MODULE: ./src/emulation/arch.ts
var arch = __webpack_require__(49506);
// EXTERNAL MODULE: ./src/image/prepare.ts + 5 modules
var prepare = __webpack_require__(87650);
// EXTERNAL MODULE: ./src/install/key.ts
var key = __webpack_require__(73368);
// EXTERNAL MODULE: ./src/install/registry.ts + 2 modules
var registry = __webpack_require__(65319);
;// CONCATENATED MODULE: ./src/store/inventory.ts
/**
 * What the store holds (`build-cell store list`, and what prune, verify and the cap choose
 * from): one row per image, with the references and install keys that name it, its base when
 * it is derived, its parts, its disk usage (hard links once), its last use and its holders.
 */









const INSTALL_PREFIX = key/* INSTALL_REFERENCE_PREFIX */.nw;
const BASE_LABEL = registry/* LABEL */.d_.base;
/** The store's images, least recently used first. `sizes: false` skips the disk usage (all zero). */
async function readInventory(store, options = {}) {
    const refs = readRefs(store);
    const images = [];
    for (const entry of entryNames(store)) {
        const parsed = (0,image_store/* parseEntryName */.XK)(entry);
        const paths = store.partPaths(entry);
        const parts = image_store/* ENTRY_PARTS */.A0.filter((part) => paths[part].some(exists));
        const named = refs.filter((r) => r.entry === entry);
        images.push({
            entry,
            arch: entryArch(entry)?.name ?? parsed.archKey,
            digest: parsed.digest,
            parts,
            references: named.filter((r) => !r.reference.startsWith(INSTALL_PREFIX)).map((r) => r.reference),
            installKeys: named
                .filter((r) => r.reference.startsWith(INSTALL_PREFIX))
                .map((r) => r.reference.slice(INSTALL_PREFIX.length)),
            ...(await baseOf(store, entry, parts)),
            bytes: 0,
            unique: 0,
            lastUsed: (0,usage/* lastUsed */.qE)(store, entry, madeAt(paths, parts)),
            holders: (0,usage/* liveHolders */.QS)(store, entry),
            usage: options.sizes === false ? (0,disk_usage/* emptyUsage */.ly)() : await imageUsage(store, entry, parts),
        });
    }
    images.sort((a, b) => a.lastUsed - b.lastUsed);
    const all = countBytes(images);
    const fs = (0,external_node_fs_.statfsSync)(existingParent(store.stateDir));
    return {
        stateDir: store.stateDir,
        images,
        bytes: (0,disk_usage/* usageBytes */.XS)(all),
        filesystem: { size: fs.blocks * fs.bsize, free: fs.bavail * fs.bsize },
        ...(options.whole ? { stateDirBytes: (0,disk_usage/* usageBytes */.XS)(restOfStateDir(store, (0,disk_usage/* addUsage */.vk)((0,disk_usage/* emptyUsage */.ly)(), all))) } : {}),
    };
}
/** The state dir, or its nearest parent that exists (a store not made yet is on that filesystem). */
function existingParent(dir) {
    for (let at = dir;; at = (0,external_node_path_.dirname)(at))
        if (mtime(at) > 0 || at === (0,external_node_path_.dirname)(at))
            return at;
}
/** Every image with a part in the store (an entry's marks or holds alone are not an image). */
function entryNames(store) {
    const names = new Set();
    for (const dir of image_store/* PART_DIRS */.zJ) {
        for (const name of listDir((0,external_node_path_.join)(store.imagesDir, dir))) {
            const entry = (0,image_store/* entryOfPartName */.Qp)(name);
            if (entry)
                names.add(entry);
        }
    }
    return [...names];
}
/** The ref records, each with the entry its digest names. */
function readRefs(store) {
    const dir = (0,external_node_path_.join)(store.imagesDir, 'refs');
    const refs = [];
    for (const name of listDir(dir)) {
        if (!name.endsWith('.json'))
            continue;
        const file = (0,external_node_path_.join)(dir, name);
        const record = readJson(file);
        const arch = record && tryArch(record.arch);
        if (!record || !arch || typeof record.digest !== 'string')
            continue;
        refs.push({ ...record, entry: store.entryName(arch, record.digest), file });
    }
    return refs;
}
/**
 * Everything of the state dir but the images' parts (counted already, in `into`): the dirs
 * themselves, cells' scratch, sessions, records and temporaries, walked.
 */
function restOfStateDir(store, into) {
    const partDirs = new Set(image_store/* PART_DIRS */.zJ);
    (0,disk_usage/* ownUsage */.yJ)(store.stateDir, into);
    for (const name of listDir(store.stateDir)) {
        if (name !== 'images')
            (0,disk_usage/* diskUsage */.hh)((0,external_node_path_.join)(store.stateDir, name), into);
    }
    (0,disk_usage/* ownUsage */.yJ)(store.imagesDir, into);
    for (const name of listDir(store.imagesDir)) {
        const dir = (0,external_node_path_.join)(store.imagesDir, name);
        if (!partDirs.has(name)) {
            (0,disk_usage/* diskUsage */.hh)(dir, into);
            continue;
        }
        (0,disk_usage/* ownUsage */.yJ)(dir, into);
        for (const child of listDir(dir))
            if (!(0,image_store/* entryOfPartName */.Qp)(child))
                (0,disk_usage/* diskUsage */.hh)((0,external_node_path_.join)(dir, child), into);
    }
    return into;
}
/** Set the sizes from the usages: `bytes` each image's own, `unique` the inodes no other image has; returns all of them. */
function countBytes(images) {
    const owners = inodeOwners(images);
    const all = (0,disk_usage/* emptyUsage */.ly)();
    for (const image of images) {
        const { usage } = image;
        image.bytes = usage.bytes;
        image.unique = usage.bytes;
        for (const [inode, size] of usage.shared) {
            image.bytes += size;
            if (owners.get(inode) === 1)
                image.unique += size;
        }
        (0,disk_usage/* addUsage */.vk)(all, usage);
    }
    return all;
}
/** How many of the images have each shared inode. */
function inodeOwners(images) {
    const owners = new Map();
    for (const image of images)
        for (const inode of image.usage.shared.keys())
            owners.set(inode, (owners.get(inode) ?? 0) + 1);
    return owners;
}
/** An image's usage: its parts', a layout's and a rootfs's from their size records while those hold. */
async function imageUsage(store, entry, parts) {
    const paths = store.partPaths(entry);
    const usage = (0,disk_usage/* emptyUsage */.ly)();
    for (const part of parts) {
        if (part === 'layout' || part === 'rootfs')
            (0,disk_usage/* addUsage */.vk)(usage, await recordedUsage(store, part, entry, paths[part][0]));
        else
            for (const path of paths[part])
                (0,disk_usage/* diskUsage */.hh)(path, usage);
    }
    return usage;
}
/** A directory's usage from its size record when the record is for it (same inode) and not stale; else walked, and recorded. */
async function recordedUsage(store, part, entry, dir) {
    const record = await store.readSize(part, entry);
    const ino = (0,external_node_fs_.statSync)(dir).ino;
    const usage = record?.ino === ino && !record.stale ? (0,disk_usage/* usageFromJson */.up)(record) : undefined;
    if (usage)
        return usage;
    const walked = (0,disk_usage/* diskUsage */.hh)(dir);
    const made = record?.ino === ino ? record.made : undefined;
    // Best effort: a store this user may not write (root's, read by `list`) is walked each time.
    await store
        .writeSize(part, entry, { ino, ...(made !== undefined ? { made } : {}), ...(0,disk_usage/* usageToJson */.fK)(walked) })
        .catch(() => undefined);
    return walked;
}
/** A derived image's base, from its layout's config labels, else its EROFS record's. */
async function baseOf(store, entry, parts) {
    const fromLayout = parts.includes('layout')
        ? await (0,prepare/* readImageConfig */.MP)(store.partPaths(entry).layout[0]).catch(() => undefined)
        : undefined;
    const arch = entryArch(entry);
    const fromErofs = arch ? (await store.readErofs(arch, (0,image_store/* parseEntryName */.XK)(entry).digest))?.config : undefined;
    const base = fromLayout?.labels?.[BASE_LABEL] ?? fromErofs?.labels?.[BASE_LABEL];
    return base ? { base } : {};
}
/** When the image was made: its oldest part's mtime (a committed part is renamed into place whole). */
function madeAt(paths, parts) {
    const times = parts.flatMap((part) => paths[part].map((p) => mtime(p)).filter((t) => t > 0));
    return times.length ? Math.min(...times) : 0;
}
/** The arch of an entry (its name starts with the arch key). */
function entryArch(entry) {
    const key = (0,image_store/* parseEntryName */.XK)(entry)?.archKey;
    return arch/* ARCHES */.Pr.find((a) => (0,arch/* archKey */.Y9)(a) === key);
}
function tryArch(name) {
    try {
        return (0,arch/* resolveArch */.rI)(name);
    }
    catch {
        return undefined;
    }
}
/** A directory's names; none when it is missing. */
function listDir(dir) {
    try {
        return (0,external_node_fs_.readdirSync)(dir);
    }
    catch {
        return [];
    }
}
function exists(path) {
    return mtime(path) > 0;
}
function mtime(path) {
    try {
        return (0,external_node_fs_.statSync)(path).mtimeMs;
    }
    catch {
        return 0;
    }
}
function readJson(file) {
    try {
        return JSON.parse((0,external_node_fs_.readFileSync)(file, 'utf8'));
    }
    catch {
        return undefined;
    }
}

// EXTERNAL MODULE: external "node:fs/promises"
var promises_ = __webpack_require__(51455);
;// CONCATENATED MODULE: ./src/store/remove.ts
/**
 * Removing one image from the store, safely beside running cells, sessions and prepares (see
 * image/usage.ts): under the image's lock (never waited for: an image being prepared is in use),
 * its holds are read; with none alive, its parts are renamed aside in one step each, its refs,
 * mark and size records go, and only then, with the lock released, the parts are deleted. A run
 * that comes meanwhile waits for the lock, finds the image gone and prepares it again: it never
 * sees a half-removed rootfs.
 */







async function removeImage(store, entry, ids) {
    const release = await (0,util_lock/* tryLock */.bh)(store.lockDir(`image-${entry}`));
    if (!release)
        return { removed: false, why: 'locked: being prepared or removed by another run now' };
    let aside;
    try {
        const holders = (0,usage/* liveHolders */.QS)(store, entry);
        if (holders.length)
            return { removed: false, why: `in use by ${holders.map(describeHolder).join(', ')}` };
        aside = await store.tempDir('prune');
        await moveAside(store, entry, aside);
        for (const ref of readRefs(store))
            if (ref.entry === entry)
                await (0,promises_.rm)(ref.file, { force: true });
        for (const part of image_store/* ENTRY_PARTS */.A0)
            await (0,promises_.rm)(store.sizeFile(part, entry), { force: true });
        (0,usage/* forgetUse */.b_)(store, entry);
    }
    finally {
        await release();
    }
    await (0,stage/* removeScratch */.ZU)(aside, ids);
    return { removed: true };
}
/** Each part renamed into `aside` (the same filesystem: one rename, never a partial state). */
async function moveAside(store, entry, aside) {
    const paths = store.partPaths(entry);
    for (const part of image_store/* ENTRY_PARTS */.A0) {
        for (const path of paths[part]) {
            const into = (0,external_node_path_.join)(aside, part);
            await (0,promises_.mkdir)(into, { recursive: true });
            await (0,promises_.rename)(path, (0,external_node_path_.join)(into, (0,external_node_path_.basename)(path))).catch((error) => {
                if (error.code !== 'ENOENT')
                    throw error;
            });
        }
    }
}
function describeHolder(holder) {
    return holder.kind === 'cell'
        ? `a running cell (pid ${holder.pid})`
        : `the session whose root layer is ${holder.dir}`;
}

;// CONCATENATED MODULE: ./src/store/prune.ts
/**
 * `build-cell store prune` and the size cap: images removed least recently used first until
 * the conditions hold, never one a running cell or a live session holds; with them, the
 * scratch dirs of dead cells, stale temporaries and locks, and records of images long gone.
 *
 *   --older-than D  every image not used for D
 *   --max-size S    then, least recently used first, until all images together fit in S
 *   --all           every image not in use
 *   (none)          the images no reference names any more (a tag that moved on)
 */










/** Which images to remove, in order (least recently used first). Pure. */
function choosePrune(inventory, options) {
    const now = options.now ?? Date.now();
    const candidates = inventory.images.filter((i) => !i.holders.length && !options.keep?.includes(i.entry));
    if (options.all)
        return candidates;
    const conditions = options.olderThanMs !== undefined || options.maxBytes !== undefined;
    const chosen = new Set();
    if (!conditions)
        for (const image of candidates)
            if (!image.references.length && !image.installKeys.length)
                chosen.add(image);
    if (options.olderThanMs !== undefined)
        for (const image of candidates)
            if (image.lastUsed < now - options.olderThanMs)
                chosen.add(image);
    if (options.maxBytes !== undefined) {
        const shrink = freeing(inventory);
        for (const image of chosen)
            shrink.remove(image);
        for (const image of candidates) {
            if (shrink.total() <= options.maxBytes)
                break;
            if (chosen.has(image))
                continue;
            chosen.add(image);
            shrink.remove(image);
        }
    }
    return candidates.filter((i) => chosen.has(i));
}
/** The images' total as images are taken away: a shared inode goes with the last image that has it. */
function freeing(inventory) {
    const owners = inodeOwners(inventory.images);
    let total = inventory.bytes;
    return {
        total: () => total,
        /** Take `image` away; returns what that frees. */
        remove(image) {
            let freed = image.usage.bytes;
            for (const [inode, bytes] of image.usage.shared) {
                const left = (owners.get(inode) ?? 1) - 1;
                owners.set(inode, left);
                if (left === 0)
                    freed += bytes;
            }
            total -= freed;
            return freed;
        },
    };
}
async function pruneStore(store, options) {
    const inventory = await readInventory(store);
    const shrink = freeing(inventory);
    const report = {
        dryRun: !!options.dryRun,
        removed: [],
        kept: [],
        cells: [],
        temporaries: [],
        freed: 0,
        before: inventory.bytes,
        after: inventory.bytes,
    };
    const chosen = choosePrune(inventory, options);
    // What the conditions name but a cell or session holds: said, and kept.
    const unheld = { ...inventory, images: inventory.images.map((i) => ({ ...i, holders: [] })) };
    for (const image of choosePrune(unheld, options)) {
        const held = inventory.images.find((i) => i.entry === image.entry && i.holders.length);
        if (held)
            report.kept.push({ entry: held.entry, why: `in use by ${held.holders.map(describeHolder).join(', ')}` });
    }
    await removeEach(store, chosen, { report, shrink, options });
    // An image chosen for the size but locked meanwhile: the next least recently used ones instead.
    const { maxBytes } = options;
    if (maxBytes !== undefined && shrink.total() > maxBytes) {
        const tried = new Set(chosen);
        const more = choosePrune(inventory, { ...options, all: true }).filter((i) => !tried.has(i));
        await removeEach(store, more, { report, shrink, options, until: maxBytes });
    }
    if (!options.imagesOnly) {
        report.cells = await deadCells(store, options);
        report.temporaries = await staleTemporaries(store, options);
        if (!options.dryRun)
            removeOrphanRecords(store, options.now ?? Date.now());
    }
    report.after = shrink.total();
    report.freed =
        report.removed.reduce((sum, i) => sum + i.bytes, 0) +
            [...report.cells, ...report.temporaries].reduce((sum, c) => sum + c.bytes, 0);
    return report;
}
/** Remove images in order (until the total fits in `until`, when given), each said in the report. */
async function removeEach(store, images, context) {
    const { report, shrink, options, until } = context;
    for (const image of images) {
        if (until !== undefined && shrink.total() <= until)
            return;
        const outcome = options.dryRun ? { removed: true } : await removeImage(store, image.entry, options.ids);
        if (!outcome.removed) {
            report.kept.push({ entry: image.entry, why: outcome.why });
            continue;
        }
        report.removed.push(prunedImage(image, shrink.remove(image)));
    }
}
function prunedImage(image, bytes) {
    const { entry, arch, digest, references, installKeys } = image;
    return { entry, arch, digest, references, installKeys, lastUsed: new Date(image.lastUsed).toISOString(), bytes };
}
/**
 * The scratch dirs of cells whose engine process is gone (killed, or kept by the cleanup
 * policy when it ended); one without an owner record only when it is a day old (its engine may
 * be between making it and writing the record).
 */
async function deadCells(store, options) {
    const now = options.now ?? Date.now();
    const dead = [];
    for (const { dir, owner } of (0,cell_owner/* cellScratches */.Hx)(store.cellsDir)) {
        if (owner ? (0,util_lock/* ownerIsAlive */.BY)(owner) : now - mtimeOf(dir) < 86_400_000)
            continue;
        const bytes = (0,disk_usage/* usageBytes */.XS)((0,disk_usage/* diskUsage */.hh)(dir));
        if (!options.dryRun)
            await (0,stage/* removeScratch */.ZU)(dir, options.ids);
        dead.push({ dir, bytes });
    }
    return dead;
}
/** Temporaries of runs that died: STATE/tmp entries, half-written records, and stale locks. */
async function staleTemporaries(store, options) {
    const locks = listDir(store.locksDir).map((name) => (0,external_node_path_.join)(store.locksDir, name));
    const staleLocks = [];
    for (const lock of locks)
        if (await (0,util_lock/* lockIsStale */.Z5)(lock))
            staleLocks.push(lock);
    const paths = [...(await store.staleTemps()), ...(await store.staleRecordTemps()), ...staleLocks];
    return paths.map((path) => {
        const bytes = (0,disk_usage/* usageBytes */.XS)((0,disk_usage/* diskUsage */.hh)(path));
        if (!options.dryRun)
            (0,external_node_fs_.rmSync)(path, { recursive: true, force: true });
        return { path, bytes };
    });
}
/**
 * Refs, marks, holds and size records of images no longer in the store; an hour old at least,
 * so that a run which is making its image now keeps its records.
 */
function removeOrphanRecords(store, now) {
    const gone = (entry, file) => !image_store/* ENTRY_PARTS */.A0.some((part) => store.partPaths(entry)[part].some(external_node_fs_.existsSync)) && now - mtimeOf(file) > 3_600_000;
    for (const ref of readRefs(store))
        if (gone(ref.entry, ref.file))
            (0,external_node_fs_.rmSync)(ref.file, { force: true });
    for (const entry of listDir((0,external_node_path_.join)(store.imagesDir, 'used')))
        if (gone(entry, store.usedFile(entry)))
            (0,external_node_fs_.rmSync)(store.usedFile(entry), { force: true });
    for (const entry of listDir((0,external_node_path_.join)(store.imagesDir, 'holds')))
        (0,usage/* liveHolders */.QS)(store, entry);
    for (const name of listDir((0,external_node_path_.join)(store.imagesDir, 'sizes'))) {
        const entry = /^(?:layout|rootfs|erofs|mount)-(.+)\.json$/.exec(name)?.[1];
        const file = (0,external_node_path_.join)(store.imagesDir, 'sizes', name);
        if (entry && (0,image_store/* parseEntryName */.XK)(entry) && gone(entry, file))
            (0,external_node_fs_.rmSync)(file, { force: true });
    }
}
function mtimeOf(path) {
    try {
        return (0,external_node_fs_.statSync)(path).mtimeMs;
    }
    catch {
        return 0;
    }
}

;// CONCATENATED MODULE: ./src/store/cap.ts


async function capStore(store, maxBytes, keep, ids) {
    const start = (0,timing/* now */.t)();
    const report = await pruneStore(store, { maxBytes, keep, imagesOnly: true, ids });
    return {
        maxBytes,
        before: report.before,
        after: report.after,
        removed: report.removed,
        kept: report.kept,
        ms: Math.round(((0,timing/* now */.t)() - start) * 10) / 10,
    };
}


/***/ })

};
