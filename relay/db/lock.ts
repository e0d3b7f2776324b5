/**
 * An exclusive lock on a PGlite data directory: PGlite runs PostgreSQL in-process and does not
 * guard its directory, so two relays opening one directory would corrupt it. The lock is a file
 * `relay.pid` created with O_EXCL holding the owner's pid. A lock whose pid no longer runs (a
 * process killed with SIGKILL) is stale and taken over; one held by a live process refuses.
 */
import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export const LOCK_FILE = 'relay.pid';

export class DataDirLockedError extends Error {
  constructor(
    readonly dir: string,
    readonly pid: number,
  ) {
    super(`data directory ${dir} is in use by process ${pid}`);
    this.name = 'DataDirLockedError';
  }
}

/** Takes the lock (or throws DataDirLockedError); returns the function that releases it. */
export function lockDataDir(dir: string): () => void {
  const path = join(dir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => {
        try {
          if (ownerOf(path) === process.pid) unlinkSync(path);
        } catch {
          // already gone
        }
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const owner = ownerOf(path);
      if (owner !== undefined && (owner === process.pid || isRunning(owner))) throw new DataDirLockedError(dir, owner);
      unlinkSync(path); // stale: its process is gone (or the file is unreadable garbage)
    }
  }
  throw new Error(`could not lock data directory ${dir}`);
}

function ownerOf(path: string): number | undefined {
  try {
    const pid = Number(readFileSync(path, 'utf8').trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
