// The relay opens its PostgreSQL sockets itself (relay/db/client.ts, for TCP_NODELAY): a URL
// naming several hosts still fails over to the next one, and a server that refuses gives a clear
// error rather than a hang.
import { expect, test } from 'vitest';
import { openDatabase } from '../../relay/db/client.ts';
import { closedPort } from '../support/ports.ts';
import { backends } from './harness.ts';

const postgresBackend = backends.find((b) => b.name === 'postgres');

test.skipIf(!postgresBackend)('a URL with several hosts connects to the first that answers', async () => {
  const created = await postgresBackend!.create();
  const url = new URL(created.url!);
  const dead = await closedPort();
  const multi = `postgres://${url.username}@127.0.0.1:${dead},${url.host}${url.pathname}`;
  const database = await openDatabase({ url: multi });
  try {
    expect(await database.query<{ n: number }>('SELECT 1 AS n', [])).toEqual([{ n: 1 }]);
    expect(await database.queryOwn<{ n: number }>('SELECT 2 AS n', [])).toEqual([{ n: 2 }]);
  } finally {
    await database.close();
    await created.drop();
  }
});

test.skipIf(!postgresBackend)('a server that refuses the connection is an error, not a hang', async () => {
  const port = await closedPort();
  await expect(openDatabase({ url: `postgres://postgres@127.0.0.1:${port}/petrel` })).rejects.toMatchObject({ code: 'ECONNREFUSED' });
});
