"use strict";
exports.id = 573;
exports.ids = [573];
exports.modules = {

/***/ 5573:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {

/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   capStore: () => (/* binding */ capStore)
/* harmony export */ });
/* harmony import */ var _util_timing_js__WEBPACK_IMPORTED_MODULE_1__ = __webpack_require__(620);
/* harmony import */ var _prune_js__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(741);


async function capStore(store, maxBytes, keep, ids) {
    const start = (0,_util_timing_js__WEBPACK_IMPORTED_MODULE_1__/* .now */ .t)();
    const report = await (0,_prune_js__WEBPACK_IMPORTED_MODULE_0__/* .pruneStore */ .I9)(store, { maxBytes, keep, imagesOnly: true, ids });
    return {
        maxBytes,
        before: report.before,
        after: report.after,
        removed: report.removed,
        kept: report.kept,
        ms: Math.round(((0,_util_timing_js__WEBPACK_IMPORTED_MODULE_1__/* .now */ .t)() - start) * 10) / 10,
    };
}


/***/ }),

/***/ 1201:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {

/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   KW: () => (/* binding */ inodeOwners),
/* harmony export */   n6: () => (/* binding */ readRefs),
/* harmony export */   ol: () => (/* binding */ listDir),
/* harmony export */   vu: () => (/* binding */ entryArch),
/* harmony export */   zw: () => (/* binding */ readInventory)
/* harmony export */ });
/* harmony import */ var node_fs__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(3024);
/* harmony import */ var node_fs__WEBPACK_IMPORTED_MODULE_0___default = /*#__PURE__*/__webpack_require__.n(node_fs__WEBPACK_IMPORTED_MODULE_0__);
/* harmony import */ var node_path__WEBPACK_IMPORTED_MODULE_1__ = __webpack_require__(6760);
/* harmony import */ var node_path__WEBPACK_IMPORTED_MODULE_1___default = /*#__PURE__*/__webpack_require__.n(node_path__WEBPACK_IMPORTED_MODULE_1__);
/* harmony import */ var _image_store_js__WEBPACK_IMPORTED_MODULE_2__ = __webpack_require__(2448);
/* harmony import */ var _emulation_arch_js__WEBPACK_IMPORTED_MODULE_3__ = __webpack_require__(9506);
/* harmony import */ var _image_usage_js__WEBPACK_IMPORTED_MODULE_4__ = __webpack_require__(4870);
/* harmony import */ var _util_disk_usage_js__WEBPACK_IMPORTED_MODULE_5__ = __webpack_require__(497);
/* harmony import */ var _image_prepare_js__WEBPACK_IMPORTED_MODULE_6__ = __webpack_require__(7650);
/* harmony import */ var _install_key_js__WEBPACK_IMPORTED_MODULE_7__ = __webpack_require__(3368);
/* harmony import */ var _install_registry_js__WEBPACK_IMPORTED_MODULE_8__ = __webpack_require__(5319);
/**
 * What the store holds (`build-cell store list`, and what prune, verify and the cap choose
 * from): one row per image, with the references and install keys that name it, its base when
 * it is derived, its parts, its disk usage (hard links once), its last use and its holders.
 */









const INSTALL_PREFIX = _install_key_js__WEBPACK_IMPORTED_MODULE_7__/* .INSTALL_REFERENCE_PREFIX */ .nw;
const BASE_LABEL = _install_registry_js__WEBPACK_IMPORTED_MODULE_8__/* .LABEL */ .d_.base;
/** The store's images, least recently used first. `sizes: false` skips the disk usage (all zero). */
async function readInventory(store, options = {}) {
    const refs = readRefs(store);
    const images = [];
    for (const entry of entryNames(store)) {
        const parsed = (0,_image_store_js__WEBPACK_IMPORTED_MODULE_2__/* .parseEntryName */ .XK)(entry);
        const paths = store.partPaths(entry);
        const parts = _image_store_js__WEBPACK_IMPORTED_MODULE_2__/* .ENTRY_PARTS */ .A0.filter((part) => paths[part].some(exists));
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
            lastUsed: (0,_image_usage_js__WEBPACK_IMPORTED_MODULE_4__/* .lastUsed */ .qE)(store, entry, madeAt(paths, parts)),
            holders: (0,_image_usage_js__WEBPACK_IMPORTED_MODULE_4__/* .liveHolders */ .QS)(store, entry),
            usage: options.sizes === false ? (0,_util_disk_usage_js__WEBPACK_IMPORTED_MODULE_5__/* .emptyUsage */ .ly)() : await imageUsage(store, entry, parts),
        });
    }
    images.sort((a, b) => a.lastUsed - b.lastUsed);
    const all = countBytes(images);
    const fs = (0,node_fs__WEBPACK_IMPORTED_MODULE_0__.statfsSync)(existingParent(store.stateDir));
    return {
        stateDir: store.stateDir,
        images,
        bytes: (0,_util_disk_usage_js__WEBPACK_IMPORTED_MODULE_5__/* .usageBytes */ .XS)(all),
        filesystem: { size: fs.blocks * fs.bsize, free: fs.bavail * fs.bsize },
        ...(options.whole ? { stateDirBytes: (0,_util_disk_usage_js__WEBPACK_IMPORTED_MODULE_5__/* .usageBytes */ .XS)(restOfStateDir(store, (0,_util_disk_usage_js__WEBPACK_IMPORTED_MODULE_5__/* .addUsage */ .vk)((0,_util_disk_usage_js__WEBPACK_IMPORTED_MODULE_5__/* .emptyUsage */ .ly)(), all))) } : {}),
    };
}
/** The state dir, or its nearest parent that exists (a store not made yet is on that filesystem). */
function existingParent(dir) {
    for (let at = dir;; at = (0,node_path__WEBPACK_IMPORTED_MODULE_1__.dirname)(at))
        if (mtime(at) > 0 || at === (0,node_path__WEBPACK_IMPORTED_MODULE_1__.dirname)(at))
            return at;
}
/** Every image with a part in the store (an entry's marks or holds alone are not an image). */
function entryNames(store) {
    const names = new Set();
    for (const dir of _image_store_js__WEBPACK_IMPORTED_MODULE_2__/* .PART_DIRS */ .zJ) {
        for (const name of listDir((0,node_path__WEBPACK_IMPORTED_MODULE_1__.join)(store.imagesDir, dir))) {
            const entry = (0,_image_store_js__WEBPACK_IMPORTED_MODULE_2__/* .entryOfPartName */ .Qp)(name);
            if (entry)
                names.add(entry);
        }
    }
    return [...names];
}
/** The ref records, each with the entry its digest names. */
function readRefs(store) {
    const dir = (0,node_path__WEBPACK_IMPORTED_MODULE_1__.join)(store.imagesDir, 'refs');
    const refs = [];
    for (const name of listDir(dir)) {
        if (!name.endsWith('.json'))
            continue;
        const file = (0,node_path__WEBPACK_IMPORTED_MODULE_1__.join)(dir, name);
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
    const partDirs = new Set(_image_store_js__WEBPACK_IMPORTED_MODULE_2__/* .PART_DIRS */ .zJ);
    (0,_util_disk_usage_js__WEBPACK_IMPORTED_MODULE_5__/* .ownUsage */ .yJ)(store.stateDir, into);
    for (const name of listDir(store.stateDir)) {
        if (name !== 'images')
            (0,_util_disk_usage_js__WEBPACK_IMPORTED_MODULE_5__/* .diskUsage */ .hh)((0,node_path__WEBPACK_IMPORTED_MODULE_1__.join)(store.stateDir, name), into);
    }
    (0,_util_disk_usage_js__WEBPACK_IMPORTED_MODULE_5__/* .ownUsage */ .yJ)(store.imagesDir, into);
    for (const name of listDir(store.imagesDir)) {
        const dir = (0,node_path__WEBPACK_IMPORTED_MODULE_1__.join)(store.imagesDir, name);
        if (!partDirs.has(name)) {
            (0,_util_disk_usage_js__WEBPACK_IMPORTED_MODULE_5__/* .diskUsage */ .hh)(dir, into);
            continue;
        }
        (0,_util_disk_usage_js__WEBPACK_IMPORTED_MODULE_5__/* .ownUsage */ .yJ)(dir, into);
        for (const child of listDir(dir))
            if (!(0,_image_store_js__WEBPACK_IMPORTED_MODULE_2__/* .entryOfPartName */ .Qp)(child))
                (0,_util_disk_usage_js__WEBPACK_IMPORTED_MODULE_5__/* .diskUsage */ .hh)((0,node_path__WEBPACK_IMPORTED_MODULE_1__.join)(dir, child), into);
    }
    return into;
}
/** Set the sizes from the usages: `bytes` each image's own, `unique` the inodes no other image has; returns all of them. */
function countBytes(images) {
    const owners = inodeOwners(images);
    const all = (0,_util_disk_usage_js__WEBPACK_IMPORTED_MODULE_5__/* .emptyUsage */ .ly)();
    for (const image of images) {
        const { usage } = image;
        image.bytes = usage.bytes;
        image.unique = usage.bytes;
        for (const [inode, size] of usage.shared) {
            image.bytes += size;
            if (owners.get(inode) === 1)
                image.unique += size;
        }
        (0,_util_disk_usage_js__WEBPACK_IMPORTED_MODULE_5__/* .addUsage */ .vk)(all, usage);
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
    const usage = (0,_util_disk_usage_js__WEBPACK_IMPORTED_MODULE_5__/* .emptyUsage */ .ly)();
    for (const part of parts) {
        if (part === 'layout' || part === 'rootfs')
            (0,_util_disk_usage_js__WEBPACK_IMPORTED_MODULE_5__/* .addUsage */ .vk)(usage, await recordedUsage(store, part, entry, paths[part][0]));
        else
            for (const path of paths[part])
                (0,_util_disk_usage_js__WEBPACK_IMPORTED_MODULE_5__/* .diskUsage */ .hh)(path, usage);
    }
    return usage;
}
/** A directory's usage from its size record when the record is for it (same inode) and not stale; else walked, and recorded. */
async function recordedUsage(store, part, entry, dir) {
    const record = await store.readSize(part, entry);
    const ino = (0,node_fs__WEBPACK_IMPORTED_MODULE_0__.statSync)(dir).ino;
    const usage = record?.ino === ino && !record.stale ? (0,_util_disk_usage_js__WEBPACK_IMPORTED_MODULE_5__/* .usageFromJson */ .up)(record) : undefined;
    if (usage)
        return usage;
    const walked = (0,_util_disk_usage_js__WEBPACK_IMPORTED_MODULE_5__/* .diskUsage */ .hh)(dir);
    const made = record?.ino === ino ? record.made : undefined;
    // Best effort: a store this user may not write (root's, read by `list`) is walked each time.
    await store
        .writeSize(part, entry, { ino, ...(made !== undefined ? { made } : {}), ...(0,_util_disk_usage_js__WEBPACK_IMPORTED_MODULE_5__/* .usageToJson */ .fK)(walked) })
        .catch(() => undefined);
    return walked;
}
/** A derived image's base, from its layout's config labels, else its EROFS record's. */
async function baseOf(store, entry, parts) {
    const fromLayout = parts.includes('layout')
        ? await (0,_image_prepare_js__WEBPACK_IMPORTED_MODULE_6__/* .readImageConfig */ .MP)(store.partPaths(entry).layout[0]).catch(() => undefined)
        : undefined;
    const arch = entryArch(entry);
    const fromErofs = arch ? (await store.readErofs(arch, (0,_image_store_js__WEBPACK_IMPORTED_MODULE_2__/* .parseEntryName */ .XK)(entry).digest))?.config : undefined;
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
    const key = (0,_image_store_js__WEBPACK_IMPORTED_MODULE_2__/* .parseEntryName */ .XK)(entry)?.archKey;
    return _emulation_arch_js__WEBPACK_IMPORTED_MODULE_3__/* .ARCHES */ .Pr.find((a) => (0,_emulation_arch_js__WEBPACK_IMPORTED_MODULE_3__/* .archKey */ .Y9)(a) === key);
}
function tryArch(name) {
    try {
        return (0,_emulation_arch_js__WEBPACK_IMPORTED_MODULE_3__/* .resolveArch */ .rI)(name);
    }
    catch {
        return undefined;
    }
}
/** A directory's names; none when it is missing. */
function listDir(dir) {
    try {
        return (0,node_fs__WEBPACK_IMPORTED_MODULE_0__.readdirSync)(dir);
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
        return (0,node_fs__WEBPACK_IMPORTED_MODULE_0__.statSync)(path).mtimeMs;
    }
    catch {
        return 0;
    }
}
function readJson(file) {
    try {
        return JSON.parse((0,node_fs__WEBPACK_IMPORTED_MODULE_0__.readFileSync)(file, 'utf8'));
    }
    catch {
        return undefined;
    }
}


/***/ }),

/***/ 741:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {

/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   I9: () => (/* binding */ pruneStore)
/* harmony export */ });
/* unused harmony exports choosePrune, freeing */
/* harmony import */ var node_fs__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(3024);
/* harmony import */ var node_fs__WEBPACK_IMPORTED_MODULE_0___default = /*#__PURE__*/__webpack_require__.n(node_fs__WEBPACK_IMPORTED_MODULE_0__);
/* harmony import */ var node_path__WEBPACK_IMPORTED_MODULE_1__ = __webpack_require__(6760);
/* harmony import */ var node_path__WEBPACK_IMPORTED_MODULE_1___default = /*#__PURE__*/__webpack_require__.n(node_path__WEBPACK_IMPORTED_MODULE_1__);
/* harmony import */ var _cell_stage_js__WEBPACK_IMPORTED_MODULE_2__ = __webpack_require__(672);
/* harmony import */ var _cell_cell_owner_js__WEBPACK_IMPORTED_MODULE_3__ = __webpack_require__(7812);
/* harmony import */ var _image_store_js__WEBPACK_IMPORTED_MODULE_4__ = __webpack_require__(2448);
/* harmony import */ var _image_usage_js__WEBPACK_IMPORTED_MODULE_5__ = __webpack_require__(4870);
/* harmony import */ var _util_disk_usage_js__WEBPACK_IMPORTED_MODULE_6__ = __webpack_require__(497);
/* harmony import */ var _util_lock_js__WEBPACK_IMPORTED_MODULE_7__ = __webpack_require__(9045);
/* harmony import */ var _inventory_js__WEBPACK_IMPORTED_MODULE_8__ = __webpack_require__(1201);
/* harmony import */ var _remove_js__WEBPACK_IMPORTED_MODULE_9__ = __webpack_require__(6245);
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
    const owners = (0,_inventory_js__WEBPACK_IMPORTED_MODULE_8__/* .inodeOwners */ .KW)(inventory.images);
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
    const inventory = await (0,_inventory_js__WEBPACK_IMPORTED_MODULE_8__/* .readInventory */ .zw)(store);
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
            report.kept.push({ entry: held.entry, why: `in use by ${held.holders.map(_remove_js__WEBPACK_IMPORTED_MODULE_9__/* .describeHolder */ .s).join(', ')}` });
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
        const outcome = options.dryRun ? { removed: true } : await (0,_remove_js__WEBPACK_IMPORTED_MODULE_9__/* .removeImage */ .a)(store, image.entry, options.ids);
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
    for (const { dir, owner } of (0,_cell_cell_owner_js__WEBPACK_IMPORTED_MODULE_3__/* .cellScratches */ .Hx)(store.cellsDir)) {
        if (owner ? (0,_util_lock_js__WEBPACK_IMPORTED_MODULE_7__/* .ownerIsAlive */ .BY)(owner) : now - mtimeOf(dir) < 86_400_000)
            continue;
        const bytes = (0,_util_disk_usage_js__WEBPACK_IMPORTED_MODULE_6__/* .usageBytes */ .XS)((0,_util_disk_usage_js__WEBPACK_IMPORTED_MODULE_6__/* .diskUsage */ .hh)(dir));
        if (!options.dryRun)
            await (0,_cell_stage_js__WEBPACK_IMPORTED_MODULE_2__/* .removeScratch */ .ZU)(dir, options.ids);
        dead.push({ dir, bytes });
    }
    return dead;
}
/** Temporaries of runs that died: STATE/tmp entries, half-written records, and stale locks. */
async function staleTemporaries(store, options) {
    const locks = (0,_inventory_js__WEBPACK_IMPORTED_MODULE_8__/* .listDir */ .ol)(store.locksDir).map((name) => (0,node_path__WEBPACK_IMPORTED_MODULE_1__.join)(store.locksDir, name));
    const staleLocks = [];
    for (const lock of locks)
        if (await (0,_util_lock_js__WEBPACK_IMPORTED_MODULE_7__/* .lockIsStale */ .Z5)(lock))
            staleLocks.push(lock);
    const paths = [...(await store.staleTemps()), ...(await store.staleRecordTemps()), ...staleLocks];
    return paths.map((path) => {
        const bytes = (0,_util_disk_usage_js__WEBPACK_IMPORTED_MODULE_6__/* .usageBytes */ .XS)((0,_util_disk_usage_js__WEBPACK_IMPORTED_MODULE_6__/* .diskUsage */ .hh)(path));
        if (!options.dryRun)
            (0,node_fs__WEBPACK_IMPORTED_MODULE_0__.rmSync)(path, { recursive: true, force: true });
        return { path, bytes };
    });
}
/**
 * Refs, marks, holds and size records of images no longer in the store; an hour old at least,
 * so that a run which is making its image now keeps its records.
 */
function removeOrphanRecords(store, now) {
    const gone = (entry, file) => !_image_store_js__WEBPACK_IMPORTED_MODULE_4__/* .ENTRY_PARTS */ .A0.some((part) => store.partPaths(entry)[part].some(node_fs__WEBPACK_IMPORTED_MODULE_0__.existsSync)) && now - mtimeOf(file) > 3_600_000;
    for (const ref of (0,_inventory_js__WEBPACK_IMPORTED_MODULE_8__/* .readRefs */ .n6)(store))
        if (gone(ref.entry, ref.file))
            (0,node_fs__WEBPACK_IMPORTED_MODULE_0__.rmSync)(ref.file, { force: true });
    for (const entry of (0,_inventory_js__WEBPACK_IMPORTED_MODULE_8__/* .listDir */ .ol)((0,node_path__WEBPACK_IMPORTED_MODULE_1__.join)(store.imagesDir, 'used')))
        if (gone(entry, store.usedFile(entry)))
            (0,node_fs__WEBPACK_IMPORTED_MODULE_0__.rmSync)(store.usedFile(entry), { force: true });
    for (const entry of (0,_inventory_js__WEBPACK_IMPORTED_MODULE_8__/* .listDir */ .ol)((0,node_path__WEBPACK_IMPORTED_MODULE_1__.join)(store.imagesDir, 'holds')))
        (0,_image_usage_js__WEBPACK_IMPORTED_MODULE_5__/* .liveHolders */ .QS)(store, entry);
    for (const name of (0,_inventory_js__WEBPACK_IMPORTED_MODULE_8__/* .listDir */ .ol)((0,node_path__WEBPACK_IMPORTED_MODULE_1__.join)(store.imagesDir, 'sizes'))) {
        const entry = /^(?:layout|rootfs|erofs|mount)-(.+)\.json$/.exec(name)?.[1];
        const file = (0,node_path__WEBPACK_IMPORTED_MODULE_1__.join)(store.imagesDir, 'sizes', name);
        if (entry && (0,_image_store_js__WEBPACK_IMPORTED_MODULE_4__/* .parseEntryName */ .XK)(entry) && gone(entry, file))
            (0,node_fs__WEBPACK_IMPORTED_MODULE_0__.rmSync)(file, { force: true });
    }
}
function mtimeOf(path) {
    try {
        return (0,node_fs__WEBPACK_IMPORTED_MODULE_0__.statSync)(path).mtimeMs;
    }
    catch {
        return 0;
    }
}


/***/ }),

/***/ 6245:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {

/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   a: () => (/* binding */ removeImage),
/* harmony export */   s: () => (/* binding */ describeHolder)
/* harmony export */ });
/* harmony import */ var node_fs_promises__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(1455);
/* harmony import */ var node_fs_promises__WEBPACK_IMPORTED_MODULE_0___default = /*#__PURE__*/__webpack_require__.n(node_fs_promises__WEBPACK_IMPORTED_MODULE_0__);
/* harmony import */ var node_path__WEBPACK_IMPORTED_MODULE_1__ = __webpack_require__(6760);
/* harmony import */ var node_path__WEBPACK_IMPORTED_MODULE_1___default = /*#__PURE__*/__webpack_require__.n(node_path__WEBPACK_IMPORTED_MODULE_1__);
/* harmony import */ var _cell_stage_js__WEBPACK_IMPORTED_MODULE_2__ = __webpack_require__(672);
/* harmony import */ var _image_usage_js__WEBPACK_IMPORTED_MODULE_3__ = __webpack_require__(4870);
/* harmony import */ var _image_store_js__WEBPACK_IMPORTED_MODULE_4__ = __webpack_require__(2448);
/* harmony import */ var _util_lock_js__WEBPACK_IMPORTED_MODULE_5__ = __webpack_require__(9045);
/* harmony import */ var _inventory_js__WEBPACK_IMPORTED_MODULE_6__ = __webpack_require__(1201);
/**
 * Removing one image from the store, safely beside running cells, sessions and prepares (see
 * image/usage.ts): under the image's lock (never waited for: an image being prepared is in use),
 * its holds are read; with none alive, its parts are renamed aside in one step each, its refs,
 * mark and size records go, and only then, with the lock released, the parts are deleted. A run
 * that comes meanwhile waits for the lock, finds the image gone and prepares it again: it never
 * sees a half-removed rootfs.
 */







async function removeImage(store, entry, ids) {
    const release = await (0,_util_lock_js__WEBPACK_IMPORTED_MODULE_5__/* .tryLock */ .bh)(store.lockDir(`image-${entry}`));
    if (!release)
        return { removed: false, why: 'locked: being prepared or removed by another run now' };
    let aside;
    try {
        const holders = (0,_image_usage_js__WEBPACK_IMPORTED_MODULE_3__/* .liveHolders */ .QS)(store, entry);
        if (holders.length)
            return { removed: false, why: `in use by ${holders.map(describeHolder).join(', ')}` };
        aside = await store.tempDir('prune');
        await moveAside(store, entry, aside);
        for (const ref of (0,_inventory_js__WEBPACK_IMPORTED_MODULE_6__/* .readRefs */ .n6)(store))
            if (ref.entry === entry)
                await (0,node_fs_promises__WEBPACK_IMPORTED_MODULE_0__.rm)(ref.file, { force: true });
        for (const part of _image_store_js__WEBPACK_IMPORTED_MODULE_4__/* .ENTRY_PARTS */ .A0)
            await (0,node_fs_promises__WEBPACK_IMPORTED_MODULE_0__.rm)(store.sizeFile(part, entry), { force: true });
        (0,_image_usage_js__WEBPACK_IMPORTED_MODULE_3__/* .forgetUse */ .b_)(store, entry);
    }
    finally {
        await release();
    }
    await (0,_cell_stage_js__WEBPACK_IMPORTED_MODULE_2__/* .removeScratch */ .ZU)(aside, ids);
    return { removed: true };
}
/** Each part renamed into `aside` (the same filesystem: one rename, never a partial state). */
async function moveAside(store, entry, aside) {
    const paths = store.partPaths(entry);
    for (const part of _image_store_js__WEBPACK_IMPORTED_MODULE_4__/* .ENTRY_PARTS */ .A0) {
        for (const path of paths[part]) {
            const into = (0,node_path__WEBPACK_IMPORTED_MODULE_1__.join)(aside, part);
            await (0,node_fs_promises__WEBPACK_IMPORTED_MODULE_0__.mkdir)(into, { recursive: true });
            await (0,node_fs_promises__WEBPACK_IMPORTED_MODULE_0__.rename)(path, (0,node_path__WEBPACK_IMPORTED_MODULE_1__.join)(into, (0,node_path__WEBPACK_IMPORTED_MODULE_1__.basename)(path))).catch((error) => {
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


/***/ })

};
;