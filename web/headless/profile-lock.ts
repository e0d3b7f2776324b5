/**
 * One process per profile: DIR/store.lock holds the pid of the process that has the profile
 * open. Two processes appending to one journal would interleave records and each would keep
 * its own idea of the tables, so a second opener is refused with a clear error. A lock left by
 * a process that died (kill -9, power loss) is taken over: its pid no longer runs.
 *
 * The lock is written to a temporary file and then hard-linked into place: link() fails if the
 * name exists, so of two processes racing for a free profile exactly one wins, and a lock file
 * is never seen half-written. Taking over a stale lock re-reads it just before removing it, which leaves a window of
 * microseconds in which two processes taking over the same dead pid could both succeed; Node
 * has no flock() to close it, and it needs a crash followed by two simultaneous starts.
 */
import { linkSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export class ProfileLockedError extends Error {
  override readonly name = 'ProfileLockedError';
  readonly code = 'profile_locked';
  constructor(
    readonly dir: string,
    readonly pid: number,
  ) {
    super(`the profile ${dir} is in use by process ${pid}; close it there first`);
  }
}

function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // alive, owned by another user
  }
}

function owner(path: string): number | null {
  try {
    const pid = Number(readFileSync(path, 'utf8').trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : 0; // 0: not a pid (not ours to trust)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

/** Takes the profile's lock; returns the function that releases it. */
export function lockProfile(dir: string): () => void {
  const path = join(dir, 'store.lock');
  const mine = join(dir, `store.lock.${process.pid}`);
  writeFileSync(mine, `${process.pid}\n`, { mode: 0o600 });
  try {
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        linkSync(mine, path);
        return () => {
          if (owner(path) === process.pid) unlinkSync(path);
        };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const pid = owner(path);
      if (pid === null) continue; // released meanwhile: try again
      if (pid !== 0 && (pid === process.pid || running(pid))) throw new ProfileLockedError(dir, pid);
      if (owner(path) === pid) unlinkSync(path); // still the same stale lock: remove it, then race for it
    }
    throw new Error(`could not lock ${dir}: its lock keeps changing hands`);
  } finally {
    rmSync(mine, { force: true });
  }
}
