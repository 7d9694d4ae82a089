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
            return print(command, await (0,inventory/* readInventory */.zw)(store, { whole: true }), inventoryTable, inventoryJson);
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