// `petrel signin`: a profile whose token the relay no longer accepts while the account still
// lists the device (here a copy of the profile signed in again, which issued the device a new
// token) is told it is signed out, not removed, keeps what it holds, and signs in again with
// the password. Separate processes against a relay process, as in cli.test.ts.
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { uniqueName } from '../relay/harness.ts';
import { cliSuite } from './cli-harness.ts';

const { root, petrel } = cliSuite('petrel-cli-signin-');

describe('petrel signin', () => {
  test('signed out: commands say so and point to signin; a wrong password changes nothing; signin sends what waited, sync gets what came meanwhile', async () => {
    const alice = uniqueName('alice');
    const bob = uniqueName('bob');
    expect((await petrel('alice', ['register', alice, 'alice password'])).code).toBe(0);
    expect((await petrel('bob', ['register', bob, 'bob password'])).code).toBe(0);
    const laptop = (await petrel('laptop', ['login', alice, 'alice password'])).lines[0];
    expect((await petrel('laptop', ['send', bob, 'before'])).lines).toEqual([{ id: expect.any(String), status: 'sent' }]);

    // A copy of the profile signs in: the device gets a new token, the laptop's is dead.
    cpSync(join(root, 'laptop'), join(root, 'copy'), { recursive: true });
    expect((await petrel('copy', ['signin', 'alice password'])).lines).toEqual([{ user: alice, device: laptop.device, signedIn: true }]);

    const sync = await petrel('laptop', ['sync']);
    expect(sync.code).toBe(1);
    expect(sync.error).toEqual({ error: 'signed_out', message: expect.stringContaining('petrel signin') });
    expect(sync.error!.message).toContain(`still one of ${alice}’s devices`);
    const send = await petrel('laptop', ['send', bob, 'written while signed out']);
    expect(send.lines).toEqual([{ id: expect.any(String), status: 'pending' }]);
    expect(send.error).toMatchObject({ error: 'signed_out' });
    expect((await petrel('bob', ['send', alice, 'sent meanwhile'])).code).toBe(0);

    const wrong = await petrel('laptop', ['signin', 'not the password']);
    expect(wrong.code).toBe(1);
    expect(wrong.error).toMatchObject({ error: 'login_failed', message: expect.stringContaining('Wrong password') });
    expect((await petrel('laptop', ['sync'])).error).toMatchObject({ error: 'signed_out' });

    // The password from stdin, kept off the command line.
    expect((await petrel('laptop', ['signin', '-'], { stdin: 'alice password\n' })).lines).toEqual([{ user: alice, device: laptop.device, signedIn: true }]);
    expect((await petrel('bob', ['sync'])).lines.map((l) => l.text)).toEqual(expect.arrayContaining(['before', 'written while signed out']));
    expect((await petrel('laptop', ['sync'])).lines.map((l) => l.text)).toContain('sent meanwhile');
    expect((await petrel('laptop', ['history', bob])).lines.map((l) => l.text)).toEqual(['before', 'written while signed out', 'sent meanwhile']);
    // The copy is the one signed out now.
    expect((await petrel('copy', ['sync'])).error).toMatchObject({ error: 'signed_out' });
  }, 120_000);
});
