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
