// The petrel CLI where a new user trips: removed devices, weak passwords, relay URLs, device
// ids, profile folders, device names, a wrong clock when linking, and logging out. Each case is a separate
// process against a real relay, as in cli.test.ts.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { shortDeviceId } from '../../web/core/device-id.ts';
import { uniqueName } from '../relay/harness.ts';
import { closedPort } from '../support/ports.ts';
import { cliSuite } from './cli-harness.ts';
import { ready } from '../../crypto/index.ts';

await ready(); // web/core's base64url is crypto/'s (libsodium)

const { root, petrel } = cliSuite('petrel-cli-use-');

describe('petrel CLI usability', () => {
  const alice = uniqueName('alice');
  const bob = uniqueName('bob');

  test('login --name; devices shows short ids; remove-device takes one, names unknown ids; a removed device says so and exits non-zero', async () => {
    expect((await petrel('alice', ['register', alice, 'alice password'])).code).toBe(0);
    expect((await petrel('bob', ['register', bob, 'bob password'])).code).toBe(0);
    const laptop = await petrel('laptop', ['login', alice, 'alice password', '--name', 'alice laptop']);
    expect(laptop.lines).toEqual([{ user: alice, device: expect.any(String) }]);
    const devices = (await petrel('alice', ['devices'])).lines;
    expect(devices.map((d) => d.name)).toEqual([expect.stringMatching(/^petrel CLI on .+ · [0-9A-Z]{4}$/), 'alice laptop']);
    // The short id the app shows under each device, from the same formatter; the default name ends in its first group.
    for (const d of devices) expect(d.shortId).toBe(shortDeviceId(d.deviceId as string));
    expect((devices[0].name as string).endsWith(` · ${(devices[0].shortId as string).slice(0, 4)}`)).toBe(true);

    // Not base64url, and well-formed but not one of ours: the same answer, naming the argument.
    for (const id of ['nosuch', 'AAAAAAAAAAAAAAAAAAAAAA']) {
      const r = await petrel('alice', ['remove-device', id]);
      expect(r.code).toBe(1);
      expect(r.error).toEqual({ error: 'unknown_device', message: expect.stringContaining(`“${id}”`) });
    }
    // A message the laptop gets a copy of, to react to after its removal.
    const hello = (await petrel('alice', ['send', bob, 'hello'])).lines[0].id as string;
    expect((await petrel('laptop', ['sync'])).lines.map((l) => l.id)).toContain(hello);
    const device = laptop.lines[0].device as string;
    // By its short id as the app shows it, typed in small letters without the space.
    const short = (devices.find((d) => d.deviceId === device)!.shortId as string).replace(' ', '').toLowerCase();
    expect((await petrel('alice', ['remove-device', short])).lines).toEqual([{ removed: device }]);

    const sync = await petrel('laptop', ['sync']);
    expect(sync.code).toBe(1);
    expect(sync.error).toEqual({ error: 'device_removed', message: expect.stringContaining('was removed from') });
    expect(sync.error!.message).toContain('log in again');
    // The relay refuses the device: the message stays in its outbox, unsent (the engine's removed
    // state: nothing more goes out), then the reason and a non-zero exit.
    const send = await petrel('laptop', ['send', bob, 'x']);
    expect(send.lines).toEqual([{ id: expect.any(String), status: 'pending' }]);
    expect(send.code).toBe(1);
    expect(send.error).toMatchObject({ error: 'device_removed' });
    const react = await petrel('laptop', ['react', bob, hello, '👍']);
    expect(react.lines).toEqual([]);
    expect(react.code).toBe(1);
    expect(react.error).toMatchObject({ error: 'device_removed' });
    // The rest of the account carries on.
    expect((await petrel('alice', ['send', bob, 'still here'])).lines).toEqual([{ id: expect.any(String), status: 'sent' }]);
  }, 90_000);

  test('register takes the PWA’s password rule', async () => {
    const short = await petrel('short', ['register', uniqueName('carol'), '1234567']);
    expect(short.code).toBe(1);
    expect(short.error).toEqual({ error: 'password_too_short', message: 'The password must be at least 8 characters.' });
    expect(existsSync(join(root, 'short'))).toBe(false);
    expect((await petrel('eight', ['register', uniqueName('carol'), '12345678'])).code).toBe(0);
  }, 60_000);

  test('the relay URL is checked first, and an unreachable relay is named', async () => {
    for (const url of ['localhost:8791', 'ftp://localhost:8791', 'not a url', 'http://localhost:8791/?x=1']) {
      const r = await petrel('bad-url', ['register', uniqueName('dan'), 'dan password'], { env: { PETREL_RELAY: url } });
      expect(r.code).toBe(1);
      expect(r.error).toEqual({ error: 'invalid_relay', message: expect.stringContaining(`PETREL_RELAY “${url}” is not a relay URL`) });
    }
    const flag = await petrel('alice', ['--relay', 'localhost:8791', 'sync']);
    expect(flag.error).toMatchObject({ error: 'invalid_relay', message: expect.stringContaining('--relay “localhost:8791”') });
    expect(existsSync(join(root, 'bad-url'))).toBe(false);

    const down = `http://127.0.0.1:${await closedPort()}`;
    for (const [profile, args] of [
      ['alice', ['sync']],
      ['unreachable', ['register', uniqueName('dan'), 'dan password']],
    ] as const) {
      const r = await petrel(profile, ['--relay', down, ...args]);
      expect(r.code).toBe(1);
      expect(r.error!.message).toContain(`The relay at ${down} cannot be reached (`);
      expect(r.error!.message).toContain('ECONNREFUSED');
    }
    expect(existsSync(join(root, 'unreachable'))).toBe(false);
  }, 60_000);

  test('a command that fails before there is an account leaves no profile folder behind', async () => {
    const wrong = await petrel('wrong-pw', ['login', alice, 'not the password']);
    expect(wrong.error).toMatchObject({ error: 'login_failed' });
    const taken = await petrel('taken', ['register', alice, 'some password']);
    expect(taken.error).toMatchObject({ error: 'username_taken' });
    const nested = await petrel('new/nested', ['register', alice, 'some password']);
    expect(nested.error).toMatchObject({ error: 'username_taken' });
    for (const dir of ['wrong-pw', 'taken', 'new']) expect(existsSync(join(root, dir))).toBe(false);

    // A folder that was there before stays, without the store files the failed command wrote.
    mkdirSync(join(root, 'mine'));
    expect((await petrel('mine', ['register', alice, 'some password'])).error).toMatchObject({ error: 'username_taken' });
    expect(readdirSync(join(root, 'mine'))).toEqual([]);

    // Every other command needs an existing profile, with or without --profile.
    const cwd = mkdtempSync(join(root, 'cwd-'));
    const none = await petrel(null, ['sync'], { cwd });
    expect(none.code).toBe(1);
    expect(none.error).toEqual({ error: 'no_profile', message: expect.stringContaining('No profile at ./petrel-profile: run register or login first') });
    expect(readdirSync(cwd)).toEqual([]);
    const named = await petrel('nobody', ['history']);
    expect(named.error).toMatchObject({ error: 'no_profile', message: expect.stringContaining(join(root, 'nobody')) });
    expect(existsSync(join(root, 'nobody'))).toBe(false);
    // An existing profile is left as it was when a command fails.
    expect((await petrel('alice', ['register', alice, 'alice password'])).error).toMatchObject({ error: 'already_registered' });
    expect((await petrel('alice', ['devices'])).code).toBe(0);
  }, 60_000);

  test('logout: off the account (the other devices see it go), then the profile erased; never on the only device without --force; a device removed elsewhere is only erased', async () => {
    const carol = uniqueName('carol');
    const desk = (await petrel('carol-desk', ['register', carol, 'carol password'])).lines[0].device as string;

    // The only device: refused, saying why, and nothing changes.
    const only = await petrel('carol-desk', ['logout']);
    expect(only.code).toBe(1);
    expect(only.error).toEqual({ error: 'only_device', message: expect.stringContaining('your message history exists nowhere else') });
    expect(only.error!.message).toContain('--force');
    expect((await petrel('carol-desk', ['devices'])).lines.map((d) => d.deviceId)).toEqual([desk]);
    // Not an argument logout takes (a device id is remove-device's), nor a flag other commands take.
    expect((await petrel('carol-desk', ['logout', desk])).error).toMatchObject({ error: 'usage', message: expect.stringContaining('remove-device') });
    expect((await petrel('carol-desk', ['sync', '--force'])).error).toEqual({ error: 'usage', message: '--force is only for logout' });

    const laptop = (await petrel('carol-laptop', ['login', carol, 'carol password', '--name', 'carol laptop'])).lines[0].device as string;
    const dir = join(root, 'carol-laptop');
    writeFileSync(join(dir, 'notes.txt'), 'not the profile’s');

    // The relay cannot be reached: nothing is erased, and the command says so.
    const down = `http://127.0.0.1:${await closedPort()}`;
    const offline = await petrel('carol-laptop', ['--relay', down, 'logout']);
    expect(offline.code).toBe(1);
    expect(offline.error).toEqual({ error: 'network', message: expect.stringContaining(`The relay at ${down} cannot be reached (`) });
    expect(offline.error!.message).toContain('Nothing was erased');
    expect((await petrel('carol-laptop', ['devices'])).lines.map((d) => d.deviceId)).toEqual([desk, laptop]);

    // In use by another process (the lock names a live pid): refused before anything is done.
    writeFileSync(join(dir, 'store.lock'), `${process.pid}\n`);
    const locked = await petrel('carol-laptop', ['logout']);
    expect(locked.error).toMatchObject({ error: 'profile_locked' });
    rmSync(join(dir, 'store.lock'));
    expect((await petrel('carol-laptop', ['devices'])).lines.map((d) => d.deviceId)).toEqual([desk, laptop]);

    const out = await petrel('carol-laptop', ['logout']);
    expect(out.code).toBe(0);
    expect(out.lines).toEqual([{ user: carol, device: laptop, loggedOut: true, alreadyRemoved: false, erased: dir, kept: ['notes.txt'] }]);
    // The other device sees it go; no store file (keys, messages) is left, only what was not the profile's.
    expect((await petrel('carol-desk', ['devices'])).lines.map((d) => d.deviceId)).toEqual([desk]);
    expect(readdirSync(dir)).toEqual(['notes.txt']);
    const after = await petrel('carol-laptop', ['history']);
    expect(after.code).toBe(1);
    expect(after.error).toMatchObject({ error: 'no_profile', message: expect.stringContaining(dir) });

    // Removed from another device before it knew: nothing to tell the relay; erased all the same.
    const phone = (await petrel('carol-phone', ['login', carol, 'carol password'])).lines[0].device as string;
    expect((await petrel('carol-desk', ['remove-device', phone])).code).toBe(0);
    const gone = await petrel('carol-phone', ['logout']);
    expect(gone.code).toBe(0);
    expect(gone.lines).toEqual([{ user: carol, device: phone, loggedOut: true, alreadyRemoved: true, erased: join(root, 'carol-phone') }]);
    expect(existsSync(join(root, 'carol-phone'))).toBe(false);
    expect((await petrel('carol-phone', ['sync'])).error).toMatchObject({ error: 'no_profile' });

    // --force on the only device: as the PWA, off the list too, then erased; the password still logs in.
    const forced = await petrel('carol-desk', ['logout', '--force']);
    expect(forced.lines).toEqual([{ user: carol, device: desk, loggedOut: true, alreadyRemoved: false, onlyDevice: true, erased: join(root, 'carol-desk') }]);
    expect(existsSync(join(root, 'carol-desk'))).toBe(false);
    const again = (await petrel('carol-again', ['login', carol, 'carol password'])).lines[0].device as string;
    expect((await petrel('carol-again', ['devices'])).lines.map((d) => d.deviceId)).toEqual([again]);
  }, 120_000);

  test('link-code on a machine whose clock is 20 minutes fast says so at once, and leaves no profile', async () => {
    // The clock as the process sees it, as on a machine set wrong (Date.now is what the engine reads;
    // NODE_OPTIONS splits on spaces, hence %20).
    const fast = 'data:text/javascript,const%20n=Date.now;Date.now=()=>n()+1200000';
    const r = await petrel('fast-clock', ['link-code'], { env: { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${fast}`.trim() } });
    expect(r.code).toBe(1);
    expect(r.lines).toEqual([{ code: expect.any(String) }]);
    expect(r.error).toEqual({
      error: 'claim_expired',
      message: 'This device’s clock is 20 minutes ahead of the relay’s (linking allows 5 minutes either way). Set its date, time and time zone correctly (automatic is best), then start linking again.',
    });
    expect(existsSync(join(root, 'fast-clock'))).toBe(false);
  }, 60_000);
});
