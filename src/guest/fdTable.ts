/**
 * The guest's file descriptors. A descriptor points at an open file description (shared by
 * dup'd descriptors: one offset, one set of status flags). Host files are opened read-only;
 * the table is plain data in a snapshot and a restore reopens files by path at their offset.
 */
import fs from 'node:fs';
import { O_ACCMODE, O_LARGEFILE, O_RDONLY, O_WRONLY } from './syscalls/abi.js';
import { asArray, asBool, asBytes, asInt, asObject, asOneOf, asString, fail } from './processState.js';

export type OpenFileKind = 'stdin' | 'stdout' | 'stderr' | 'file' | 'dir' | 'null' | 'zero' | 'random' | 'memory';
export const OPEN_FILE_KINDS: readonly OpenFileKind[] = ['stdin', 'stdout', 'stderr', 'file', 'dir', 'null', 'zero', 'random', 'memory'];

export interface DirEntry {
  name: string;
  ino: bigint;
  type: number;
}

/** An open file description. */
export interface OpenFile {
  id: number;
  kind: OpenFileKind;
  /** Host path for 'file'/'dir'; the guest path for devices and generated files. */
  path: string;
  /** Host fd for 'file'/'dir' (-1 otherwise). */
  hostFd: number;
  offset: number;
  /** Status flags as F_GETFL reports them (access mode, O_APPEND, O_NONBLOCK, …). */
  flags: number;
  refs: number;
  /** Contents of a generated file ('memory', e.g. /proc/self/maps). */
  contents?: Uint8Array;
  /** Directory listing, read on first getdents64. */
  entries?: DirEntry[];
}

interface FdSlot {
  file: OpenFile;
  cloexec: boolean;
}

export interface FdTableState {
  files: { id: number; kind: OpenFileKind; path: string; offset: number; flags: number; contents?: Uint8Array }[];
  fds: { fd: number; file: number; cloexec: boolean }[];
}

/** Largest descriptor number the table ever hands out (RLIMIT_NOFILE's hard limit). */
export const FD_LIMIT_MAX = 4096;

export class FdTable {
  private readonly slots: (FdSlot | undefined)[] = [];
  private nextId = 1;

  /** A table with descriptors 0, 1 and 2 open on the guest's stdin, stdout and stderr. */
  static withStdio(): FdTable {
    const t = new FdTable();
    t.installAt(0, t.newFile('stdin', '/dev/stdin', -1, O_RDONLY | O_LARGEFILE), false);
    t.installAt(1, t.newFile('stdout', '/dev/stdout', -1, O_WRONLY | O_LARGEFILE), false);
    t.installAt(2, t.newFile('stderr', '/dev/stderr', -1, O_WRONLY | O_LARGEFILE), false);
    return t;
  }

  newFile(kind: OpenFileKind, path: string, hostFd: number, flags: number, contents?: Uint8Array): OpenFile {
    const f: OpenFile = { id: this.nextId++, kind, path, hostFd, offset: 0, flags, refs: 0 };
    if (contents) f.contents = contents;
    return f;
  }

  get(fd: number): OpenFile | undefined {
    return fd >= 0 ? this.slots[fd]?.file : undefined;
  }

  isCloexec(fd: number): boolean {
    return this.slots[fd]?.cloexec ?? false;
  }

  setCloexec(fd: number, cloexec: boolean): void {
    const s = this.slots[fd];
    if (s) s.cloexec = cloexec;
  }

  /** Installs at the lowest free descriptor >= minFd below `limit`; -1 when none is free. */
  install(file: OpenFile, cloexec: boolean, limit: number, minFd = 0): number {
    for (let fd = minFd; fd < limit; fd++) {
      if (this.slots[fd] === undefined) {
        this.installAt(fd, file, cloexec);
        return fd;
      }
    }
    return -1;
  }

  /** Installs at `fd`, closing whatever was there (dup2 semantics). */
  installAt(fd: number, file: OpenFile, cloexec: boolean): void {
    file.refs++;
    const old = this.slots[fd];
    this.slots[fd] = { file, cloexec };
    if (old) this.release(old.file);
  }

  /** Closes a descriptor; false if it was not open. */
  close(fd: number): boolean {
    const s = fd >= 0 ? this.slots[fd] : undefined;
    if (!s) return false;
    this.slots[fd] = undefined;
    this.release(s.file);
    return true;
  }

  /** Open descriptors, ascending. */
  openFds(): number[] {
    const out: number[] = [];
    this.slots.forEach((s, fd) => {
      if (s) out.push(fd);
    });
    return out;
  }

  closeAll(): void {
    for (const fd of this.openFds()) this.close(fd);
  }

  snapshot(): FdTableState {
    const files = new Map<number, FdTableState['files'][number]>();
    const fds: FdTableState['fds'] = [];
    this.slots.forEach((s, fd) => {
      if (!s) return;
      const f = s.file;
      if (!files.has(f.id)) {
        const entry: FdTableState['files'][number] = { id: f.id, kind: f.kind, path: f.path, offset: f.offset, flags: f.flags };
        if (f.contents) entry.contents = f.contents.slice();
        files.set(f.id, entry);
      }
      fds.push({ fd, file: f.id, cloexec: s.cloexec });
    });
    return { files: [...files.values()], fds };
  }

  /**
   * Rebuilds a table, reopening host files read-only by path. `mayOpen` decides whether a
   * host path may be reopened (the current allow-read policy).
   */
  static restore(value: unknown, mayOpen: (hostPath: string) => boolean, prefix = 'fds'): FdTable {
    const state = validateFdTableState(value, prefix);
    const t = new FdTable();
    const byId = new Map<number, OpenFile>();
    try {
      state.files.forEach((sf, i) => {
        let hostFd = -1;
        if (sf.kind === 'file' || sf.kind === 'dir') {
          const field = `${prefix}.files[${i}].path`;
          if (!mayOpen(sf.path)) fail(field, `${sf.path} is not under an allowed directory`);
          try {
            hostFd = fs.openSync(sf.path, fs.constants.O_RDONLY | (sf.kind === 'dir' ? fs.constants.O_DIRECTORY : 0));
          } catch (e) {
            fail(field, `cannot reopen ${sf.path}: ${(e as Error).message}`);
          }
        }
        const f = t.newFile(sf.kind, sf.path, hostFd, sf.flags, sf.contents?.slice());
        f.id = sf.id;
        f.offset = sf.offset;
        byId.set(sf.id, f);
        t.nextId = Math.max(t.nextId, sf.id + 1);
      });
      state.fds.forEach((d, i) => {
        const f = byId.get(d.file);
        if (!f) fail(`${prefix}.fds[${i}].file`, `no open file with id ${d.file}`);
        if (t.slots[d.fd]) fail(`${prefix}.fds[${i}].fd`, `descriptor ${d.fd} listed twice`);
        t.installAt(d.fd, f!, d.cloexec);
      });
    } catch (e) {
      for (const f of byId.values()) if (f.hostFd >= 0 && f.refs === 0) fs.closeSync(f.hostFd);
      t.closeAll();
      throw e;
    }
    for (const f of byId.values()) if (f.refs === 0 && f.hostFd >= 0) fs.closeSync(f.hostFd);
    return t;
  }

  private release(f: OpenFile): void {
    f.refs--;
    if (f.refs === 0 && f.hostFd >= 0) {
      try {
        fs.closeSync(f.hostFd);
      } catch {
        // already gone: nothing to release
      }
      f.hostFd = -1;
    }
  }
}

/** Access mode of an open file (O_RDONLY, O_WRONLY or O_RDWR). */
export function accessMode(f: OpenFile): number {
  return f.flags & O_ACCMODE;
}

export function validateFdTableState(value: unknown, prefix = 'fds'): FdTableState {
  const s = asObject(value, prefix);
  const ids = new Set<number>();
  const files = asArray(s.files, `${prefix}.files`).map((x, i) => {
    const f = `${prefix}.files[${i}]`;
    const o = asObject(x, f);
    const id = asInt(o.id, `${f}.id`, 1);
    if (ids.has(id)) fail(`${f}.id`, `duplicate id ${id}`);
    ids.add(id);
    const kind = asOneOf(o.kind, `${f}.kind`, OPEN_FILE_KINDS);
    const entry: FdTableState['files'][number] = {
      id,
      kind,
      path: asString(o.path, `${f}.path`),
      offset: asInt(o.offset, `${f}.offset`),
      flags: asInt(o.flags, `${f}.flags`, 0, 0xffffffff),
    };
    if (o.contents !== undefined && o.contents !== null) entry.contents = asBytes(o.contents, `${f}.contents`);
    if (kind === 'memory' && !entry.contents) fail(`${f}.contents`, 'missing for a generated file');
    return entry;
  });
  const fds = asArray(s.fds, `${prefix}.fds`).map((x, i) => {
    const f = `${prefix}.fds[${i}]`;
    const o = asObject(x, f);
    return {
      fd: asInt(o.fd, `${f}.fd`, 0, FD_LIMIT_MAX - 1),
      file: asInt(o.file, `${f}.file`, 1),
      cloexec: asBool(o.cloexec, `${f}.cloexec`),
    };
  });
  return { files, fds };
}
