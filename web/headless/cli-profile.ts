/**
 * The profile folder the CLI works in. Only the commands that create a device here (register,
 * login, link-code) may create a profile; every other command needs one that exists, so a
 * missing or mistyped --profile is an error rather than a new empty folder. A creating command
 * that fails before the profile holds an account removes what it created: a wrong password or
 * a taken username leaves nothing behind. `logout` erases a profile once its device is off the account.
 */
import { mkdirSync, readdirSync, rmdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Store } from '../core/store/schema.ts';
import { CliError } from './cli-options.ts';
import { openFileStore } from './file-store.ts';
import { lockProfile } from './profile-lock.ts';
import { fsyncDir } from './store-files.ts';

/** The file store's own files (store-files.ts); the lock goes away when the store closes. */
const STORE_FILE = /^store\.(snapshot|journal\.\d+)$/;

function storeFiles(dir: string): string[] {
  try {
    return readdirSync(dir).filter((f) => STORE_FILE.test(f));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw e;
  }
}

export interface OpenProfile {
  readonly store: Store;
  /**
   * Removes what opening created: the folder (and any parent folders) if it did not exist, else
   * the store files if there were none. Call only after the store is closed.
   */
  discard(): void;
  /**
   * Erases the profile: its keys, messages and every other row are in the store files, and
   * they all go. Call only after the store is closed; it takes the profile's lock again for the
   * erase, so it fails (ProfileLockedError) rather than pull the files from under a process that
   * opened the profile meanwhile. The folder goes too unless it holds files that are not the
   * store's; returns their names.
   */
  erase(): string[];
}

/** Newest journal first, the snapshot last: a crash part-way leaves an older but whole store (or none). */
function eraseOrder(files: readonly string[]): string[] {
  const gen = (f: string) => Number(/^store\.journal\.(\d+)$/.exec(f)?.[1] ?? -1);
  return [...files].sort((a, b) => gen(b) - gen(a));
}

function erase(dir: string): string[] {
  const unlock = lockProfile(dir);
  try {
    // An interrupted compaction's temporary snapshot holds rows too.
    for (const f of ['store.snapshot.tmp', ...eraseOrder(storeFiles(dir))]) rmSync(join(dir, f), { force: true });
    fsyncDir(dir);
  } finally {
    unlock();
  }
  try {
    rmdirSync(dir);
    return [];
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOTEMPTY' || (e as NodeJS.ErrnoException).code === 'EEXIST') return readdirSync(dir);
    throw e;
  }
}

export async function openProfile(dir: string, opts: { create: boolean }): Promise<OpenProfile> {
  const existing = storeFiles(dir);
  if (!opts.create && existing.length === 0) throw new CliError('no_profile', `No profile at ${dir}: run register or login first (or pick another with --profile or PETREL_PROFILE).`);
  // The first folder mkdir made, if any: the one to remove on failure.
  const made = mkdirSync(dir, { recursive: true, mode: 0o700 });
  const store = await openFileStore(dir).catch((e) => {
    if (made) rmSync(made, { recursive: true, force: true });
    throw e;
  });
  return {
    store,
    discard() {
      if (made) rmSync(made, { recursive: true, force: true });
      else if (existing.length === 0) for (const f of storeFiles(dir)) rmSync(join(dir, f), { force: true });
    },
    erase: () => erase(dir),
  };
}
