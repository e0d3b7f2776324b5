// The mergeable group state (web/core/group-state.ts): the reported scenario in every arrival
// order, the merge laws, who wins when changes cross (a leave or removal over a concurrent add,
// renames by tag), older clients' messages, and the wire shape. Random histories use a seeded
// generator so a failure reproduces exactly.
import { describe, expect, test } from 'vitest';
import * as g from '../../web/core/group-state.ts';
import { ContentError, decodeContent, encodeContent, type GroupState } from '../../web/core/protocol/content.ts';
import { newConversation } from '../../web/core/views.ts';
import { seeded } from './seeded.ts';

function permutations<T>(xs: readonly T[]): T[][] {
  if (xs.length <= 1) return [[...xs]];
  return xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map((p) => [x, ...p]));
}

const fold = (base: GroupState, states: readonly GroupState[]) => states.reduce(g.merge, base);

describe('the reported scenario: bob leaves while alice adds carol and renames', () => {
  const created = g.create('G', 'team', ['alice', 'bob'], 'alice');
  const added = g.change(created, { action: 'add', user: 'carol' }, 'alice');
  const renamed = g.change(added, { action: 'rename', name: 'team2' }, 'alice');
  const left = g.change(created, { action: 'leave' }, 'bob');

  test('the add and the leave collide at version 2, and neither is lost', () => {
    expect([added.version, left.version]).toEqual([2, 2]);
    const m = g.merge(added, left);
    expect(m.members).toEqual(['alice', 'carol']);
  });

  test('every arrival order gives the same group: bob out, carol in, renamed', () => {
    const results = permutations([added, renamed, left]).map((p) => fold(created, p));
    for (const r of results) expect(g.same(r, results[0]!)).toBe(true);
    expect(results[0]).toMatchObject({ name: 'team2', members: ['alice', 'carol'], version: 3 });
  });

  test('the later rename does not bring bob back', () => {
    const bobAfterSync = fold(left, [added, renamed]);
    expect(bobAfterSync.members).not.toContain('bob');
    expect(g.describe(left, bobAfterSync, 'bob')).toEqual(['alice added carol', 'alice renamed the group to “team2”']);
    // alice learns of the leave after her own changes, and says so.
    expect(g.describe(renamed, g.merge(renamed, left), 'alice')).toEqual(['bob left']);
  });
});

describe('who wins when changes cross', () => {
  const base = g.create('G', 'g', ['alice', 'bob', 'carol'], 'alice');

  test('a removal wins over a concurrent re-add; a re-add made after seeing it wins', () => {
    const removed = g.change(base, { action: 'remove', user: 'carol' }, 'alice');
    const readded = g.change(removed, { action: 'add', user: 'carol' }, 'bob'); // bob saw the removal
    expect(g.merge(removed, readded).members).toContain('carol');
    const removedAgain = g.change(readded, { action: 'remove', user: 'carol' }, 'alice');
    const concurrentReadd = g.change(readded, { action: 'rename', name: 'x' }, 'bob');
    expect(g.merge(removedAgain, concurrentReadd).members).not.toContain('carol');
  });

  test('a leave is never undone by an add that had not seen it, even one with a higher version', () => {
    const removed = g.change(base, { action: 'remove', user: 'bob' }, 'alice'); // v2
    const bobLeft = g.change(base, { action: 'leave' }, 'bob'); // v2, concurrent
    // carol saw only alice's removal, renames twice, then adds bob back (v5).
    let carol = g.change(g.merge(base, removed), { action: 'rename', name: 'a' }, 'carol');
    carol = g.change(carol, { action: 'rename', name: 'b' }, 'carol');
    carol = g.change(carol, { action: 'add', user: 'bob' }, 'carol');
    expect(carol.members).toContain('bob');
    for (const p of permutations([removed, bobLeft, carol])) expect(fold(base, p).members).toEqual(['alice', 'carol']);
    // Once carol has seen the leave, her add counts.
    const again = g.change(fold(base, [removed, bobLeft, carol]), { action: 'add', user: 'bob' }, 'carol');
    expect(again.members).toContain('bob');
  });

  test('concurrent renames: the higher version wins, then the author, the same in both orders', () => {
    const byBob = g.change(base, { action: 'rename', name: 'from bob' }, 'bob');
    const byCarol = g.change(base, { action: 'rename', name: 'from carol' }, 'carol');
    expect(g.merge(byBob, byCarol).name).toBe('from carol');
    expect(g.merge(byCarol, byBob).name).toBe('from carol');
    const later = g.change(g.change(base, { action: 'rename', name: 'x' }, 'alice'), { action: 'rename', name: 'from alice, v3' }, 'alice');
    expect(g.merge(byCarol, later).name).toBe('from alice, v3');
  });
});

describe('merge laws over random concurrent histories', () => {
  const USERS = ['alice', 'bob', 'carol', 'dave', 'erin'];

  /** Devices (one per user) change their own state and sometimes merge what others sent. */
  function history(seed: number) {
    const rnd = seeded(seed);
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)]!;
    const start = g.create('G', 'start', ['alice', 'bob', 'carol'], 'alice');
    const local = new Map(USERS.map((u) => [u, start]));
    const sent: GroupState[] = [];
    // Per out-event (user, remover, version): has any later add of that user seen it?
    const outs: { user: string; by: string; version: number }[] = [];
    const adds: { user: string; seenOut: (o: { user: string; by: string; version: number }) => boolean }[] = [];
    for (let step = 0; step < 40; step++) {
      const u = pick(USERS);
      const s = local.get(u)!;
      if (rnd() < 0.4 && sent.length) {
        local.set(u, g.merge(s, pick(sent)));
        continue;
      }
      if (!s.members.includes(u)) continue;
      const r = rnd();
      const others = s.members.filter((m) => m !== u);
      const outsiders = USERS.filter((m) => !s.members.includes(m));
      let next: GroupState;
      if (r < 0.3 && outsiders.length) {
        const user = pick(outsiders);
        next = g.change(s, { action: 'add', user }, u);
        const entry = s.roster?.find((e) => e.user === user);
        const known = new Map(entry?.out ?? []);
        adds.push({ user, seenOut: (o) => o.user === user && (known.get(o.by) ?? -1) >= o.version });
      } else if (r < 0.5 && others.length) {
        const user = pick(others);
        next = g.change(s, { action: 'remove', user }, u);
        outs.push({ user, by: u, version: next.version });
      } else if (r < 0.65) {
        next = g.change(s, { action: 'leave' }, u);
        outs.push({ user: u, by: u, version: next.version });
      } else next = g.change(s, { action: 'rename', name: `n${step}` }, u);
      local.set(u, next);
      sent.push(next);
    }
    return { start, sent, outs, adds };
  }

  test.each([1, 2, 3, 4, 5, 6, 7, 8])('seed %i: any order of arrival, any grouping, the same group', (seed) => {
    const { start, sent, outs } = history(seed);
    expect(sent.length).toBeGreaterThan(5);
    expect(outs.length).toBeGreaterThan(0);
    const rnd = seeded(seed * 7919);
    const reference = fold(start, sent);
    for (let i = 0; i < 20; i++) {
      const shuffled = [...sent].sort(() => rnd() - 0.5);
      expect(g.same(fold(start, shuffled), reference)).toBe(true);
      // Associativity: merge two halves separately, then together.
      const cut = Math.floor(rnd() * shuffled.length);
      expect(g.same(g.merge(fold(start, shuffled.slice(0, cut)), fold(start, shuffled.slice(cut))), reference)).toBe(true);
    }
    expect(g.same(g.merge(reference, reference), reference)).toBe(true);
  });

  test.each([11, 12, 13, 14, 15, 16, 17, 18])('seed %i: a removal or leave no add had seen keeps its user out', (seed) => {
    const { start, sent, outs, adds } = history(seed);
    const final = fold(start, sent);
    for (const o of outs) {
      const laterSeen = adds.some((a) => a.seenOut(o));
      if (!laterSeen) expect(final.members, `${o.user} out by ${o.by} at ${o.version}`).not.toContain(o.user);
    }
  });
});

describe('older clients and stored rows', () => {
  const have = g.create('G', 'team', ['alice', 'bob'], 'alice');
  const legacy = (action: 'add' | 'rename' | 'leave', members: string[], name: string, version: number, subject?: string) =>
    g.fromMessage(g.change(have, { action: 'rename', name: 'team3' }, 'carol'), action, { id: 'G', name, members, version }, subject, 'bob');

  test('a state without a roster is read as the change its action names, never as a snapshot', () => {
    // An old client at version 1 renames: it does not undo the rename at version 2 it never saw.
    const r = legacy('rename', ['alice', 'bob'], 'old name', 2);
    expect(r).toMatchObject({ name: 'team3', members: ['alice', 'bob'] });
    expect(legacy('leave', ['alice'], 'team', 2)!.members).toEqual(['alice']);
    expect(legacy('add', ['alice', 'bob', 'dave'], 'team', 3, 'dave')!.members).toEqual(['alice', 'bob', 'dave']);
  });

  test('a row stored before the mergeable state is read as its snapshot', () => {
    const row = { ...newConversation('group:G', 'group', 'old', ['bob', 'carol'], 0), groupVersion: 4 };
    const s = g.stateOf(row, 'alice');
    expect(s).toMatchObject({ name: 'old', members: ['alice', 'bob', 'carol'], version: 4 });
    expect(g.change(s, { action: 'leave' }, 'alice').version).toBe(5);
    const leftRow = { ...row, left: true };
    expect(g.stateOf(leftRow, 'alice').members).toEqual(['bob', 'carol']);
    // Someone adding alice back later (higher version) counts as having seen the old leave.
    const back = g.change(g.stateOf(leftRow, 'bob'), { action: 'add', user: 'alice' }, 'bob');
    expect(g.merge(g.stateOf(leftRow, 'alice'), back).members).toContain('alice');
  });
});

describe('group content on the wire', () => {
  const at = 1_700_000_000_000;
  test('the mergeable state round-trips; a state from an older client still decodes', () => {
    const s = g.change(g.create('G', 'team', ['alice', 'bob'], 'alice'), { action: 'leave' }, 'bob');
    const c = { v: 1 as const, id: 'id1', at, conv: { t: 'group' as const, id: 'G', ver: s.version }, body: { type: 'group' as const, action: 'merge' as const, group: s } };
    expect(decodeContent(encodeContent(c))).toEqual(c);
    // Written by the client before this change: no nameTag, no roster.
    const old = new TextEncoder().encode('\x01{"v":1,"id":"id2","at":1700000000000,"conv":{"t":"group","id":"G","ver":2},"body":{"type":"group","action":"rename","group":{"id":"G","name":"n","members":["alice","bob"],"version":2}}}');
    expect(decodeContent(old).body).toMatchObject({ type: 'group', action: 'rename', group: { name: 'n', version: 2 } });
  });

  test('a removal notice holds exactly the recipient’s entry, and nothing else', () => {
    const s = g.notice(g.change(g.create('G', 'team', ['alice', 'bob', 'carol'], 'alice'), { action: 'remove', user: 'bob' }, 'alice'), 'bob');
    expect(s).toEqual({ id: 'G', name: '', members: [], version: 2, roster: [{ user: 'bob', added: [1, 'alice'], out: [['alice', 2]] }] });
    const body = (group: object, subject = 'bob') => ({ type: 'group' as const, action: 'removed-notice' as const, group: group as GroupState, subject });
    const ok = { v: 1 as const, id: 'id', at, conv: { t: 'group' as const, id: 'G', ver: 2 }, body: body(s) };
    expect(decodeContent(encodeContent(ok))).toEqual(ok);
    const carol = { user: 'carol', added: [1, 'alice'] };
    for (const b of [body(s, 'carol'), body({ ...s, roster: [carol] }), body({ ...s, roster: [...s.roster!, carol] }), body({ ...s, roster: [] }), body({ ...s, name: 'team' }), body({ ...s, members: ['carol'] }), body({ ...s, nameTag: [1, 'alice'] }), { ...body(s), subject: undefined }]) {
      expect(() => decodeContent(encodeContent({ ...ok, body: b }))).toThrow(ContentError);
    }
  });

  test('a malformed roster is refused', () => {
    const s = g.create('G', 'team', ['alice'], 'alice');
    for (const roster of [[{ user: 'x', added: [1] }], [{ user: 'x', out: [['y', -1]] }], [{ user: 7 }], 'x', new Array(1025).fill({ user: 'x' })]) {
      const c = { v: 1 as const, id: 'id', at, conv: null, body: { type: 'group' as const, action: 'merge' as const, group: { ...s, roster } as unknown as GroupState } };
      expect(() => decodeContent(encodeContent(c))).toThrow(ContentError);
    }
  });
});
