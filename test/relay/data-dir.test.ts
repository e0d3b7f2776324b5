// The embedded PGlite database persisted in a data directory: data survives a reopen, a second
// opener (in this process or another) is refused, and a lock left by a killed process is taken over.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eq } from 'drizzle-orm';
import { afterAll, expect, test } from 'vitest';
import { openDatabase } from '../../relay/db/client.ts';
import { DataDirLockedError, LOCK_FILE } from '../../relay/db/lock.ts';
import { relaySecrets } from '../../relay/db/schema.ts';

const dir = mkdtempSync(join(tmpdir(), 'petrel-data-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('persisted, exclusive, and a stale lock is taken over', async () => {
  const first = await openDatabase({ dataDir: dir });
  await first.db.insert(relaySecrets).values({ name: 'probe', value: 'kept', createdAt: 1 });
  await expect(openDatabase({ dataDir: dir })).rejects.toBeInstanceOf(DataDirLockedError);
  await first.close();
  expect(existsSync(join(dir, LOCK_FILE))).toBe(false);

  // A lock file left by a process that no longer runs (as after SIGKILL).
  const dead = spawnSync(process.execPath, ['-e', '0']).pid;
  writeFileSync(join(dir, LOCK_FILE), String(dead));
  const again = await openDatabase({ dataDir: dir });
  try {
    const [row] = await again.db.select().from(relaySecrets).where(eq(relaySecrets.name, 'probe'));
    expect(row?.value).toBe('kept');
  } finally {
    await again.close();
  }
});
