// The petrel CLI as a user runs it: separate processes per command, profiles on disk, a relay
// process; JSON lines on stdout, one JSON error line on stderr with a non-zero exit.
import { describe, expect, test } from 'vitest';
import { uniqueName } from '../relay/harness.ts';
import { cliSuite, type Run } from './cli-harness.ts';

const { petrel } = cliSuite('petrel-cli-');

describe('petrel CLI', () => {
  const alice = uniqueName('alice');
  const bob = uniqueName('bob');

  test('register, send (also from stdin), sync, history, safety numbers', async () => {
    expect((await petrel('alice', ['register', alice, 'alice password'])).lines).toEqual([{ user: alice, device: expect.any(String) }]);
    expect((await petrel('bob', ['register', bob, 'bob password'])).code).toBe(0);
    const sent = await petrel('alice', ['send', bob, 'hello', 'bob']);
    expect(sent.lines).toEqual([{ id: expect.any(String), status: 'sent' }]);
    const piped = await petrel('alice', ['send', bob, '-'], { stdin: 'line one\nline two\n' });
    expect(piped.lines.map((l) => l.status)).toEqual(['sent', 'sent']);
    const got = await petrel('bob', ['sync']);
    expect(got.lines.map((l) => [l.conversation, l.from, l.text])).toEqual([
      [`dm:${alice}`, alice, 'hello bob'],
      [`dm:${alice}`, alice, 'line one'],
      [`dm:${alice}`, alice, 'line two'],
    ]);
    expect(Object.keys(got.lines[0]).sort()).toEqual(['conversation', 'from', 'fromDevice', 'id', 'sentAt', 'text']);
    expect((await petrel('bob', ['history', alice])).lines.map((l) => l.text)).toEqual(['hello bob', 'line one', 'line two']);
    // The conversation id that sync and `conversations` print names it too; a name that matches nothing is an error.
    expect((await petrel('bob', ['conversations'])).lines.map((c) => c.id)).toEqual([`dm:${alice}`]);
    expect((await petrel('bob', ['history', `dm:${alice}`])).lines.map((l) => l.text)).toEqual(['hello bob', 'line one', 'line two']);
    for (const name of ['nosuchuser', 'dm:nosuchuser', 'group:nosuch']) {
      const none = await petrel('bob', ['history', name]);
      expect(none.code).toBe(1);
      expect(none.lines).toEqual([]);
      expect(none.error).toMatchObject({ error: 'unknown_conversation', message: expect.stringContaining(`“${name}”`) });
    }
    const snA = (await petrel('alice', ['safety-number', bob])).lines[0];
    const snB = (await petrel('bob', ['safety-number', alice])).lines[0];
    expect(snA).toEqual({ digits: expect.stringMatching(/^\d{60}$/), verified: false });
    expect(snB.digits).toBe(snA.digits);
    await petrel('alice', ['verify', bob]);
    expect((await petrel('alice', ['safety-number', bob])).lines[0].verified).toBe(true);

    // Reply, react, edit, delete by the ids history prints.
    const [hello, one, two] = got.lines as { id: string }[];
    const reply = await petrel('bob', ['reply', alice, hello!.id, 'hello', 'alice']);
    expect(reply.lines).toEqual([{ id: expect.any(String), status: 'sent' }]);
    expect((await petrel('bob', ['react', alice, one!.id, '👍'])).lines).toEqual([{ id: one!.id, reacted: true }]);
    expect((await petrel('bob', ['edit', alice, one!.id, 'no'])).stderr).toContain('not_yours');
    // sync prints reactions, edits and deletes too, after the new messages, as {"event": ...} lines.
    const reacted = (await petrel('alice', ['sync'])).lines;
    expect(reacted.find((l) => l.id === reply.lines[0].id)).toMatchObject({ text: 'hello alice', from: bob });
    expect(reacted.at(-1)).toEqual({ event: 'reaction', conversation: `dm:${bob}`, id: one!.id, from: bob, emoji: '👍' });
    expect((await petrel('alice', ['edit', bob, two!.id, 'line 2'])).lines).toEqual([{ id: two!.id, edited: true }]);
    const typo = (await petrel('alice', ['send', bob, 'typo'])).lines[0];
    expect((await petrel('alice', ['delete', bob, typo.id])).lines).toEqual([{ id: typo.id, deleted: true }]);
    const mine = (await petrel('alice', ['history', bob])).lines;
    expect(mine.find((l) => l.id === reply.lines[0].id)).toMatchObject({ text: 'hello alice', replyTo: hello!.id, from: bob });
    expect(mine.find((l) => l.id === one!.id)).toMatchObject({ reactions: { [bob]: '👍' } });
    const changed = (await petrel('bob', ['sync'])).lines;
    expect(changed.filter((l) => l.event)).toEqual([
      { event: 'edit', conversation: `dm:${alice}`, id: two!.id, from: alice, text: 'line 2' },
      { event: 'delete', conversation: `dm:${alice}`, id: typo.id, from: alice },
    ]);
    expect(changed.filter((l) => !l.event).map((l) => l.id)).toEqual([typo.id]); // the deleted message arrived in this sync too
    expect((await petrel('bob', ['react', alice, one!.id, ''])).lines).toEqual([{ id: one!.id, reacted: true }]);
    expect((await petrel('alice', ['sync'])).lines).toEqual([{ event: 'reaction', conversation: `dm:${bob}`, id: one!.id, from: bob, emoji: '' }]);
    const theirs = (await petrel('bob', ['history', alice])).lines;
    expect(theirs.find((l) => l.id === two!.id)).toMatchObject({ text: 'line 2', edited: true });
    expect(theirs.find((l) => l.id === typo.id)).toMatchObject({ text: '', deleted: true });
    expect((await petrel('bob', ['react', alice, 'nope', 'x'])).stderr).toContain('unknown_message');
  }, 90_000);

  test('groups and linking a second device with a code', async () => {
    const g = (await petrel('alice', ['group-create', 'Birds', bob])).lines[0].group as string;
    expect(g).toMatch(/^group:/);
    await petrel('bob', ['sync']);
    await petrel('bob', ['send', g, 'tweet']);
    expect((await petrel('alice', ['sync'])).lines.map((l) => l.text)).toContain('tweet');

    let approve: Promise<Run> | undefined;
    const linking = petrel('alice2', ['link-code'], {
      onLine: (l) => {
        if (l.code) approve = petrel('alice', ['link-approve', l.code, '--name', 'Alice CLI 2']);
      },
    });
    const linked = await linking;
    expect(linked.code).toBe(0);
    expect((await approve!).lines[0]).toMatchObject({ approved: true, name: 'Alice CLI 2' });
    expect(linked.lines.at(-1)).toMatchObject({ user: alice, linked: true });
    expect((await petrel('alice2', ['history'])).lines.map((l) => l.text)).toEqual(expect.arrayContaining(['hello bob', 'tweet']));
    expect((await petrel('alice', ['devices'])).lines.map((d) => d.name)).toContain('Alice CLI 2');
  }, 90_000);

  test('errors are one JSON line on stderr and a non-zero exit', async () => {
    const r = await petrel('carol', ['send', bob, 'hi']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stderr.trim())).toMatchObject({ error: 'no_profile' });
    const taken = await petrel('carol', ['register', alice, 'carol password']);
    expect(taken.code).toBe(1);
    expect(JSON.parse(taken.stderr.trim())).toMatchObject({ error: 'username_taken' });
    const nobody = await petrel('alice', ['send', 'nobody-here', 'hi']);
    expect(JSON.parse(nobody.stderr.trim())).toMatchObject({ error: 'unknown_user' });
  }, 60_000);
});

// A relay that refuses for real: a group member with no device left (her only one logged out with
// --force) makes the relay refuse everything sent to the group (404 no_device_list, a 4xx the
// outbox does not retry by itself). Once she logs in again, what was kept goes through on `retry`.
describe('petrel CLI: refused messages and changes, retried or discarded', () => {
  const alice = uniqueName('alice');
  const bob = uniqueName('bob');
  const carol = uniqueName('carol');

  test('failures and history say what was refused and why; retry sends it once, discard shows what the others see; clear errors otherwise', async () => {
    for (const [p, u] of [['fa', alice], ['fb', bob], ['fc', carol]] as const) expect((await petrel(p, ['register', u, `${u} password`])).code).toBe(0);
    const g = (await petrel('fa', ['group-create', 'Trio', bob, carol])).lines[0].group as string;
    const noon = (await petrel('fa', ['send', g, 'see you at noon'])).lines[0].id as string;
    expect((await petrel('fb', ['sync'])).lines.map((l) => l.text)).toContain('see you at noon');
    expect((await petrel('fc', ['logout', '--force'])).lines[0]).toMatchObject({ loggedOut: true, onlyDevice: true });

    // Refused: each kept, and the error names the id to retry or discard.
    const reacted = await petrel('fa', ['react', g, noon, '👍']);
    expect(reacted.code).toBe(1);
    expect(reacted.error).toMatchObject({ error: 'send_failed', message: expect.stringContaining('Your reaction was not sent.') });
    const edited = await petrel('fa', ['edit', g, noon, 'see you at one']);
    expect(edited.error).toMatchObject({ error: 'send_failed', message: expect.stringContaining('the others still see the earlier text') });
    const asked = await petrel('fa', ['send', g, 'anyone there?']);
    expect(asked.lines).toEqual([{ id: expect.any(String), status: 'failed' }]);
    const question = asked.lines[0].id as string;
    expect(asked.error).toMatchObject({ error: 'send_failed', message: expect.stringContaining(`petrel retry ${question}`) });
    const never = (await petrel('fa', ['send', g, 'never mind'])).lines[0].id as string;

    const listed = (await petrel('fa', ['failures'])).lines.filter((l) => l.kind !== 'undecryptable');
    const noDevice = 'The recipient has no device that can receive messages right now.';
    expect(listed).toEqual([
      { kind: 'reaction', id: expect.any(String), conversation: g, messageId: noon, emoji: '👍', code: 'no_device_list', reason: expect.stringContaining(noDevice) },
      { kind: 'edit', id: expect.any(String), conversation: g, messageId: noon, code: 'no_device_list', reason: expect.stringMatching(/^Your edit was not sent: the others still see the earlier text\. The recipient has no device/) },
      { kind: 'send', id: question, conversation: g, text: 'anyone there?', code: 'no_device_list', reason: expect.stringMatching(/^A message was not sent\. The recipient has no device/) },
      { kind: 'send', id: never, conversation: g, text: 'never mind', code: 'no_device_list', reason: expect.stringContaining(noDevice) },
    ]);
    const [reaction, edit] = listed as { id: string }[];
    expect(reacted.error!.message).toContain(`petrel retry ${reaction!.id}`);
    expect(edited.error!.message).toContain(`petrel discard ${edit!.id}`);
    // history marks the same, on the messages they belong to.
    const before = (await petrel('fa', ['history', g])).lines;
    expect(before.find((l) => l.id === noon)).toMatchObject({
      text: 'see you at one', // applied here at once, as the PWA shows it
      reactions: { [alice]: '👍' },
      failedChanges: [
        { id: reaction!.id, kind: 'reaction', emoji: '👍', code: 'no_device_list', reason: expect.stringContaining(noDevice) },
        { id: edit!.id, kind: 'edit', code: 'no_device_list', reason: expect.stringContaining(noDevice) },
      ],
    });
    expect(before.find((l) => l.id === question)).toMatchObject({ text: 'anyone there?', failed: { code: 'no_device_list', reason: expect.stringContaining(noDevice) } });
    expect(before.find((l) => l.id === noon && l.failed)).toBeUndefined();

    // An id that names nothing, or a message of which nothing failed: said, nothing sent.
    expect((await petrel('fa', ['retry', 'nosuchid'])).error).toMatchObject({ error: 'unknown_failure', message: expect.stringContaining('petrel failures') });
    const notFailed = await petrel('fa', ['discard', noon]);
    expect(notFailed.code).toBe(1);
    expect(notFailed.error).toMatchObject({ error: 'not_failed', message: expect.stringContaining(reaction!.id) });
    expect(notFailed.error!.message).toContain(edit!.id);
    expect((await petrel('fa', ['retry'])).error).toMatchObject({ error: 'usage' });

    // Retried while she still has no device: refused again, and kept again under the same id.
    const again = await petrel('fa', ['retry', reaction!.id]);
    expect(again.error).toMatchObject({ error: 'send_failed', message: expect.stringContaining('refused it again') });
    expect((await petrel('fa', ['failures'])).lines.filter((l) => l.kind === 'reaction').map((l) => l.id)).toEqual([reaction!.id]);

    // Carol back on a new device: retry the reaction and the first message, discard the edit and the second.
    expect((await petrel('fc2', ['login', carol, `${carol} password`])).code).toBe(0);
    expect((await petrel('fa', ['retry', reaction!.id])).lines).toEqual([{ id: reaction!.id, kind: 'reaction', conversation: g, messageId: noon, status: 'sent' }]);
    expect((await petrel('fa', ['retry', question])).lines).toEqual([{ id: question, kind: 'send', conversation: g, status: 'sent' }]);
    expect((await petrel('fa', ['discard', edit!.id])).lines).toEqual([{ id: edit!.id, kind: 'edit', conversation: g, messageId: noon, discarded: true }]);
    expect((await petrel('fa', ['discard', never])).lines).toEqual([{ id: never, kind: 'send', conversation: g, discarded: true }]);

    // Bob got the retried message and reaction, once each, and never the discarded edit or message.
    const got = (await petrel('fb', ['sync'])).lines;
    expect(got.filter((l) => !l.event).map((l) => l.text)).toEqual(['anyone there?']);
    expect(got.filter((l) => l.event)).toEqual([{ event: 'reaction', conversation: g, id: noon, from: alice, emoji: '👍' }]);
    const bobs = (await petrel('fb', ['history', g])).lines.filter((l) => !l.system);
    expect(bobs.map((l) => [l.text, l.reactions ?? null, l.edited ?? false])).toEqual([
      ['see you at noon', { [alice]: '👍' }, false],
      ['anyone there?', null, false],
    ]);
    // Alice's device now shows what Bob sees, with nothing left failed.
    const after = (await petrel('fa', ['history', g])).lines.filter((l) => !l.system);
    expect(after).toEqual([
      expect.objectContaining({ id: noon, text: 'see you at noon', reactions: { [alice]: '👍' } }),
      expect.objectContaining({ id: question, text: 'anyone there?' }),
    ]);
    expect(after.some((l) => l.failed || l.failedChanges || l.edited)).toBe(false);
    expect((await petrel('fa', ['failures'])).lines.filter((l) => l.kind !== 'undecryptable')).toEqual([]);

    // Done once: a second retry or discard finds nothing to do, and nothing more reaches Bob.
    expect((await petrel('fa', ['retry', reaction!.id])).error).toMatchObject({ error: 'unknown_failure' });
    expect((await petrel('fa', ['retry', question])).error).toMatchObject({ error: 'not_failed', message: expect.stringContaining('was not refused') });
    expect((await petrel('fa', ['discard', never])).error).toMatchObject({ error: 'unknown_failure' });
    expect((await petrel('fb', ['sync'])).lines).toEqual([]);
  }, 180_000);
});

