// Group changes between devices, message by message, without a relay: each device applies what
// it receives through the engine's own applyContent (web/core/apply.ts) over a MemoryStore, and
// whatever a device passes on (merged states, queued in its outbox) goes back into the
// simulated network. Inboxes are FIFO, as the relay's are. Seeded schedules interleave changes
// and deliveries, so a failure reproduces exactly.
import { describe, expect, test } from 'vitest';
import { applyContent, type ApplyResult } from '../../web/core/apply.ts';
import { Ctx, mutex } from '../../web/core/context.ts';
import * as g from '../../web/core/group-state.ts';
import type { RelayApi } from '../../web/core/net/api.ts';
import { decodeContent, encodeContent, type GroupState, newId } from '../../web/core/protocol/content.ts';
import type { ConversationRow } from '../../web/core/store/schema.ts';
import { MemoryStore } from '../../web/core/store/memory-store.ts';
import { newConversation } from '../../web/core/views.ts';
import { seeded } from './seeded.ts';
import { ready } from '../../crypto/index.ts';

await ready(); // web/core's base64url is crypto/'s (libsodium)

interface Device {
  readonly user: string;
  readonly id: string;
  readonly ctx: Ctx;
  readonly inbox: { bytes: Uint8Array; sender: string; senderDevice: string }[];
}

const GROUP = 'group:G';

class Net {
  readonly devices: Device[] = [];
  private clock = 1_000;
  private readonly rng = seeded(99);

  device(user: string, id = `${user}-1`): Device {
    const ctx = new Ctx(new MemoryStore(), {} as RelayApi, (n) => Uint8Array.from({ length: n }, () => Math.floor(this.rng() * 256)), () => ++this.clock, mutex());
    ctx.me = { username: user, account: null, device: {} as never, deviceB64: id };
    const d: Device = { user, id, ctx, inbox: [] };
    this.devices.push(d);
    return d;
  }

  /** As the relay fans out: the named users' devices and the sender's own other devices. */
  send(from: Device, to: readonly string[], bytes: Uint8Array): void {
    for (const d of this.devices) if (d !== from && (to.includes(d.user) || d.user === from.user)) d.inbox.push({ bytes, sender: from.user, senderDevice: from.id });
  }

  row(d: Device): Promise<ConversationRow | undefined> {
    return d.ctx.store.read(['conversations'], (tx) => tx.get('conversations', GROUP));
  }

  state(d: Device): Promise<GroupState | null> {
    return this.row(d).then((r) => (r ? g.stateOf(r, d.user) : null));
  }

  async create(d: Device, members: string[]): Promise<void> {
    const s = g.create('G', 'team', [d.user, ...members], d.user);
    await d.ctx.store.write(['conversations'], (tx) => tx.put('conversations', g.withState(newConversation(GROUP, 'group', 'team', [], 0), s, d.user)));
    this.send(d, members, this.content(d, { type: 'group', action: 'create', group: s }));
  }

  /** What groups.ts's changeGroup does, minus the directory and the outbox. */
  async change(d: Device, c: g.GroupChange): Promise<GroupState> {
    const before = (await this.state(d))!;
    const after = g.change(before, c, d.user);
    await d.ctx.store.write(['conversations'], async (tx) => tx.put('conversations', g.withState((await tx.get('conversations', GROUP))!, after, d.user)));
    const to = [...new Set([...before.members, ...after.members])].filter((u) => u !== d.user);
    this.send(d, to, this.content(d, { type: 'group', action: c.action, group: after, ...('user' in c ? { subject: c.user } : {}) }));
    return after;
  }

  /** Delivers the next message in d's inbox; what d queued in its outbox goes out. */
  async deliver(d: Device): Promise<void> {
    const m = d.inbox.shift()!;
    const out: ApplyResult = { touched: new Set(), added: [], after: [] };
    const incoming = { content: decodeContent(m.bytes), sender: m.sender, senderDevice: m.senderDevice, receivedAt: ++this.clock };
    await d.ctx.store.write(['conversations', 'messages', 'seen', 'outbox', 'meta'], (tx) => applyContent(d.ctx, tx, incoming, out));
    const queued = await d.ctx.store.write(['outbox'], async (tx) => {
      const rows = await tx.getAll('outbox');
      for (const r of rows) await tx.delete('outbox', r.id);
      return rows;
    });
    for (const r of queued) this.send(d, r.to, r.content);
  }

  /** Delivers until every inbox is empty; passing states on must end, so a storm fails instead of hanging. */
  async settle(limit = 20_000): Promise<void> {
    for (let busy = true; busy; ) {
      busy = false;
      for (const d of this.devices) {
        while (d.inbox.length) {
          if (--limit < 0) throw new Error('the devices keep passing states on: settle did not end');
          busy = true;
          await this.deliver(d);
        }
      }
    }
  }

  private content(d: Device, body: Parameters<typeof encodeContent>[0]['body']): Uint8Array {
    return encodeContent({ v: 1, id: newId(d.ctx.rng), at: ++this.clock, conv: { t: 'group', id: 'G', ver: 0 }, body });
  }
}

const lines = (d: Device) => d.ctx.store.read(['messages'], async (tx) => (await tx.getAll('messages')).filter((m) => m.system).map((m) => m.text));

describe('the reported scenario, message by message', () => {
  // bob leaves from version 1 while alice adds carol and renames; bob's leave reaches alice
  // either after both of her changes or between them.
  test.each(['after', 'between'])('bob’s leave reaches alice %s her changes: everyone agrees bob left', async (when) => {
    const net = new Net();
    const [alice, bob, carol] = [net.device('alice'), net.device('bob'), net.device('carol')];
    await net.create(alice, ['bob']);
    await net.deliver(bob);
    await net.change(bob, { action: 'leave' });
    await net.change(alice, { action: 'add', user: 'carol' });
    if (when === 'between') await net.deliver(alice); // the leave, before her rename
    await net.change(alice, { action: 'rename', name: 'team2' });
    await net.settle();

    const [a, c] = [await net.state(alice), await net.state(carol)];
    expect(a).toMatchObject({ name: 'team2', members: ['alice', 'carol'] });
    expect(g.same(a!, c!)).toBe(true);
    // bob is out, and ends with the same group too: alice told him what he had missed.
    expect(g.same((await net.state(bob))!, a!)).toBe(true);
    expect((await net.row(bob))!.left).toBe(true);
    expect((await net.row(alice))!.members).toEqual(['carol']);
    expect((await net.row(carol))!.members).toEqual(['alice']);
    expect(await lines(alice)).toContain('bob left');
    expect(await lines(carol)).toContain('bob left');
    expect(await lines(bob)).not.toContain('alice added you');
  });

  test('the same-version collision (a rename and a leave, both at version 3) reaches carol in both orders', async () => {
    for (const first of ['rename', 'leave']) {
      const net = new Net();
      const [alice, bob, carol] = [net.device('alice'), net.device('bob'), net.device('carol')];
      await net.create(alice, ['bob', 'carol']);
      await net.settle();
      const moves = { rename: () => net.change(alice, { action: 'rename', name: 'team2' }), leave: () => net.change(bob, { action: 'leave' }) };
      const a = await moves[first as 'rename'](); // concurrent: neither has seen the other
      const b = await moves[first === 'rename' ? 'leave' : 'rename']();
      expect(a.version).toBe(b.version);
      await net.settle();
      for (const d of [alice, bob, carol]) expect(await net.state(d), `${first} first, ${d.user}`).toMatchObject({ name: 'team2', members: ['alice', 'carol'] });
    }
  });
});

describe('removals crossing other changes', () => {
  async function three(extra: string[] = []) {
    const net = new Net();
    const ds = ['alice', 'bob', 'carol', 'dave', ...extra].map((u) => net.device(u));
    await net.create(ds[0]!, ds.slice(1).map((d) => d.user));
    await net.settle();
    return { net, ds };
  }

  test('a removal and a concurrent rename by someone else: both kept, in either order', async () => {
    for (const first of [0, 1]) {
      const { net, ds } = await three();
      const [alice, bob] = [ds[0]!, ds[1]!];
      const moves = [() => net.change(alice, { action: 'remove', user: 'dave' }), () => net.change(bob, { action: 'rename', name: 'new' })];
      await moves[first]!();
      await moves[1 - first]!();
      await net.settle();
      for (const d of ds.slice(0, 3)) expect(await net.state(d)).toMatchObject({ name: 'new', members: ['alice', 'bob', 'carol'] });
    }
  });

  test('two members removing each other at once: the remaining members agree', async () => {
    // Everyone hears alice's removal of bob first: bob's of alice is refused everywhere. If some
    // hear bob's first, both removals count, everywhere.
    for (const order of ['as sent', 'reversed']) {
      const { net, ds } = await three(['erin']);
      const [alice, bob, carol, dave] = ds as [Device, Device, Device, Device];
      await net.change(alice, { action: 'remove', user: 'bob' });
      await net.change(bob, { action: 'remove', user: 'alice' });
      if (order === 'reversed') for (const d of [carol, dave]) d.inbox.reverse(); // each change is the other's first
      await net.deliver(carol);
      await net.settle();
      const members = order === 'as sent' ? ['alice', 'carol', 'dave', 'erin'] : ['carol', 'dave', 'erin'];
      for (const d of [carol, dave, ds[4]!]) expect(await net.state(d), `${order}: ${d.user}`).toMatchObject({ members });
    }
  });

  test('removed while removing their remover: they learn from a member that they are out', async () => {
    // Everyone hears alice's removal of bob first, so bob's removal of alice is refused. bob
    // refuses alice's removal of him (alice is out as he knows the group), and alice's notice
    // too: only carol's and dave's notices (his own roster entry, nothing else) take him out.
    const { net, ds } = await three();
    const [alice, bob, carol] = ds as [Device, Device, Device];
    await net.change(alice, { action: 'remove', user: 'bob' });
    await net.change(bob, { action: 'remove', user: 'alice' });
    await net.settle();
    const s = await Promise.all([alice, carol, ds[3]!].map((d) => net.state(d)));
    for (const x of s) expect(g.same(x!, s[0]!)).toBe(true);
    expect(s[0]!.members).toEqual(['alice', 'carol', 'dave']);
    // bob keeps his refused removal of alice in his own state: he is out, and nobody takes it.
    expect((await net.state(bob))!.members).toEqual(['carol', 'dave']);
    expect((await net.row(bob))!.left).toBe(true);
    expect(await lines(bob)).toContain('alice removed you');
    expect((await net.row(carol))!.members).toEqual(['alice', 'dave']);
  });

  // KNOWN DIVERGENCE (smallest case of seeds 13, 14, ... of the random block with removals).
  // Two members remove each other at once and no third member hears both: each refuses the
  // other's change and every state the other sends (`admit`: nothing is taken from a removed
  // member), so both count themselves in, each with a different group. Each also sends the
  // other a removal notice, and each ignores it: a notice is taken only from someone the
  // receiver counts as a member, or a removed member could put out the member who removed them.
  // Neither ends out (which would be agreement too): removal notices mend only a removed member
  // who still has a member left to tell them. Refusal depends on what the receiver has
  // already seen, so it is not a function of the message: the members' states are joins of
  // different subsets of the changes, and no pass-on can cross the split. A trial that took a
  // change by its sent state alone (the sender counts themself in there) left no member
  // disagreeing in 1000 random seeds with removals (one leave still missed), but it lets a
  // removed member's client claim never to have heard of its removal, and changes what three
  // tests here expect. Expected to fail until admission is decided (test.fails).
  test.fails('two members alone removing each other at once: they agree on the group', async () => {
    const net = new Net();
    const [alice, bob] = [net.device('alice'), net.device('bob')];
    await net.create(alice, ['bob', 'carol']);
    await net.deliver(bob);
    await net.change(alice, { action: 'remove', user: 'carol' });
    await net.deliver(bob);
    await net.change(alice, { action: 'remove', user: 'bob' });
    await net.change(bob, { action: 'remove', user: 'alice' });
    await net.settle();
    const [a, b] = [(await net.state(alice))!, (await net.state(bob))!];
    // Whoever still counts themself in must hold the same group as the other.
    if (a.members.includes('alice') && b.members.includes('bob')) expect(g.same(a, b)).toBe(true);
  });

  test('a change by someone removed at the same moment: the remaining members agree on it', async () => {
    // alice removes bob while bob renames. Whether the rename counts depends on whether some
    // member took it before hearing of the removal (a removed member must not keep changing the
    // group), but the members always agree.
    for (const carolFirst of ['rename', 'removal']) {
      const { net, ds } = await three();
      const [alice, bob, carol, dave] = ds as [Device, Device, Device, Device];
      await net.change(alice, { action: 'remove', user: 'bob' });
      await net.change(bob, { action: 'rename', name: 'bob was here' });
      if (carolFirst === 'rename') carol.inbox.reverse();
      await net.settle();
      const states = await Promise.all([alice, carol, dave].map((d) => net.state(d)));
      for (const s of states) expect(g.same(s!, states[0]!), carolFirst).toBe(true);
      expect(states[0]!.members).toEqual(['alice', 'carol', 'dave']);
      expect(states[0]!.name).toBe(carolFirst === 'rename' ? 'bob was here' : 'team');
    }
  });
});

describe('who may change the group', () => {
  test('someone who left is heard (their other devices, what they pass on) until a member removes them', async () => {
    const net = new Net();
    const [alice, bob, carol] = [net.device('alice'), net.device('bob'), net.device('carol')];
    await net.create(alice, ['bob', 'carol']);
    await net.settle();
    const left = await net.change(bob, { action: 'leave' });
    await net.settle();
    // A change bob's other device made before it heard of his leave is still taken...
    const fromStaleDevice = g.change(g.change(left, { action: 'add', user: 'bob' }, 'bob'), { action: 'rename', name: 'from bob' }, 'bob');
    const send = (to: Device, s: GroupState) => to.inbox.push({ bytes: encodeContent({ v: 1, id: newId(bob.ctx.rng), at: 1, conv: null, body: { type: 'group', action: 'merge', group: s } }), sender: 'bob', senderDevice: 'bob-2' });
    send(alice, g.change(left, { action: 'rename', name: 'from bob' }, 'bob'));
    await net.settle();
    expect((await net.state(alice))!.name).toBe('from bob');
    // ...but he cannot add himself back, and once removed nothing of his is taken.
    send(alice, fromStaleDevice);
    await net.settle();
    expect((await net.state(alice))!.members).toEqual(['alice', 'carol']);
    await net.change(alice, { action: 'remove', user: 'bob' });
    send(alice, g.change(left, { action: 'rename', name: 'still bob' }, 'bob'));
    await net.settle();
    expect(await net.state(alice)).toMatchObject({ name: 'from bob', members: ['alice', 'carol'] });
    expect(g.same((await net.state(alice))!, (await net.state(carol))!)).toBe(true);
  });
});

describe('removal notices', () => {
  const notices = (d: Device) => d.inbox.map((m) => ({ ...m, content: decodeContent(m.bytes) })).filter((m) => m.content.body.type === 'group' && m.content.body.action === 'removed-notice');
  /** alice renames the group and removes bob; carol hears it, bob does not yet. */
  async function removedUnaware() {
    const net = new Net();
    const [alice, bob, carol] = [net.device('alice'), net.device('bob'), net.device('carol')];
    await net.create(alice, ['bob', 'carol', 'dave']);
    await net.settle();
    await net.change(alice, { action: 'rename', name: 'secret name' });
    await net.change(alice, { action: 'remove', user: 'bob' });
    while (carol.inbox.length) await net.deliver(carol);
    return { net, alice, bob, carol };
  }

  test('a member refusing a removed member’s change tells them of their own removal once, and nothing else', async () => {
    const { net, bob, carol } = await removedUnaware();
    await net.change(bob, { action: 'rename', name: 'one' });
    await net.change(bob, { action: 'rename', name: 'two' });
    await net.deliver(carol);
    expect(notices(bob).length).toBe(1);
    await net.deliver(carol); // a second refusal: no second notice
    const [n, ...more] = notices(bob);
    expect(more).toEqual([]);
    expect(n!.sender).toBe('carol');
    // Only bob's own entry: no other member, not the name, and the version is his removal's.
    const entry = (await net.state(carol))!.roster!.find((e) => e.user === 'bob');
    expect(n!.content.body).toEqual({ type: 'group', action: 'removed-notice', subject: 'bob', group: { id: 'G', name: '', members: [], version: 3, roster: [entry] } });
    expect(n!.content.conv).toEqual({ t: 'group', id: 'G', ver: 3 });
    expect(new TextDecoder().decode(n!.bytes)).not.toMatch(/carol|dave|secret|team/);
    expect((await net.row(carol))!.noticed).toEqual(['bob 3']);
    await net.settle();
    expect((await net.row(bob))!.left).toBe(true);
    expect(await lines(bob)).toContain('alice removed you');
  });

  test('a notice from a removed member, or naming someone else, changes nothing', async () => {
    const { net, alice, bob, carol } = await removedUnaware();
    await net.settle();
    const s = (await net.state(alice))!;
    const forged = (user: string) => g.notice(g.change(s, { action: 'remove', user }, 'bob'), user);
    const send = (to: Device, from: string, group: GroupState, subject: string) =>
      to.inbox.push({ bytes: encodeContent({ v: 1, id: newId(bob.ctx.rng), at: 1, conv: null, body: { type: 'group', action: 'removed-notice', group, subject } }), sender: from, senderDevice: `${from}-1` });
    send(alice, 'bob', forged('alice'), 'alice'); // bob is out: alice ignores him
    send(carol, 'alice', forged('dave'), 'dave'); // from a member, but not carol's own entry
    await net.deliver(alice);
    await net.deliver(carol);
    expect(net.devices.every((d) => !d.inbox.length)).toBe(true); // neither is answered
    expect((await net.state(alice))!.members).toEqual(['alice', 'carol', 'dave']);
    expect(g.same((await net.state(carol))!, (await net.state(alice))!)).toBe(true);
  });
});

// PETREL_GROUP_SEEDS=1000 runs more of them.
const seeds = Array.from({ length: Number(process.env.PETREL_GROUP_SEEDS ?? 16) }, (_, i) => i + 1);

/**
 * Up to 14 random changes by random members, deliveries interleaved at random; then every device
 * still in the group must hold the same group, and whoever left or was removed stays out unless
 * re-added by someone who had seen it. `removals`: members also remove each other.
 */
async function randomHistory(seed: number, removals: boolean): Promise<void> {
  const USERS = ['alice', 'bob', 'carol', 'dave'];
  const rnd = seeded(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)]!;
  const net = new Net();
  // alice has a second device: her two devices change the group at once too.
  const devices = [...USERS.map((u) => net.device(u)), net.device('alice', 'alice-2')];
  await net.create(devices[0]!, ['bob', 'carol']);
  // Each leave (by === user) or removal, and each add with the removals its author had seen.
  const outs: { user: string; by: string; version: number }[] = [];
  const adds: { user: string; saw: Map<string, number> }[] = [];
  let changes = 0;
  for (let step = 0; step < 120 && changes < 14; step++) {
    const d = pick(devices);
    if (rnd() < 0.6) {
      if (d.inbox.length) await net.deliver(d);
      continue;
    }
    const s = await net.state(d);
    if (!s?.members.includes(d.user)) continue;
    const outsiders = USERS.filter((u) => !s.members.includes(u));
    const others = s.members.filter((u) => u !== d.user);
    const r = rnd();
    changes++;
    if (r < 0.35 && outsiders.length) {
      const user = pick(outsiders);
      const e = s.roster?.find((x) => x.user === user);
      adds.push({ user, saw: new Map([...(e?.out ?? []), ...(e?.seen ?? [])].sort((x, y) => x[1] - y[1])) });
      await net.change(d, { action: 'add', user });
    } else if (r < (removals ? 0.5 : 0.55)) outs.push({ user: d.user, by: d.user, version: (await net.change(d, { action: 'leave' })).version });
    else if (removals && r < 0.7 && others.length) {
      const user = pick(others);
      outs.push({ user, by: d.user, version: (await net.change(d, { action: 'remove', user })).version });
    } else await net.change(d, { action: 'rename', name: `n${step}` });
  }
  await net.settle();
  const states = await Promise.all(devices.map(async (d) => ({ d, s: await net.state(d) })));
  const members = states.filter((x): x is { d: Device; s: GroupState } => !!x.s?.members.includes(x.d.user));
  for (const { d, s } of members) expect(g.same(s, members[0]!.s), `${d.id} agrees with ${members[0]!.d.id}`).toBe(true);
  // A removal by someone removed at the same moment may be refused everywhere (a removed member
  // must not keep changing the group): only removals by someone nobody removed must count.
  const wasRemoved = new Set(outs.filter((o) => o.by !== o.user).map((o) => o.user));
  for (const { s } of members) {
    for (const o of outs) {
      if (o.by !== o.user && wasRemoved.has(o.by)) continue;
      if (!adds.some((a) => a.user === o.user && (a.saw.get(o.by) ?? -1) >= o.version)) expect(s.members, `${o.user} ${o.by === o.user ? 'left' : `removed by ${o.by}`} at ${o.version}`).not.toContain(o.user);
    }
  }
}

describe('random concurrent adds, leaves and renames, delivered in random interleavings', () => {
  test.each(seeds)('seed %i: every member ends with the same group, and whoever left stays out', (seed) => randomHistory(seed, false));
});

// KNOWN DIVERGENCE: with removals, 86 of the first 1000 seeds (94 before removal notices) end
// with members who count themselves in holding different groups; the smallest case is 'two
// members alone removing each other at once' above. Exactly the seeds that diverge today are
// expected to fail (test.fails), so removals are covered on every run and a change that mends
// them (or breaks another seed) shows, with PETREL_GROUP_SEEDS=1000 too.
const DIVERGING = new Set([
  13, 14, 20, 29, 43, 45, 54, 72, 79, 81, 83, 97, 115, 130, 133, 135, 145, 162, 177, 184, 224, 228,
  263, 287, 289, 298, 302, 316, 318, 329, 330, 338, 339, 352, 359, 378, 382, 395, 405, 417, 426,
  433, 438, 447, 456, 466, 470, 486, 531, 553, 574, 603, 607, 615, 641, 645, 649, 677, 693, 707,
  712, 717, 737, 747, 756, 762, 770, 781, 782, 806, 813, 815, 817, 822, 840, 848, 855, 866, 868,
  885, 889, 899, 928, 933, 952, 993
]);
describe('random concurrent adds, leaves, removals and renames, delivered in random interleavings', () => {
  const name = 'seed %i: every member ends with the same group, and whoever left or was removed stays out';
  test.each(seeds.filter((s) => !DIVERGING.has(s)))(name, (seed) => randomHistory(seed, true));
  test.fails.each(seeds.filter((s) => DIVERGING.has(s)))(`${name} (known divergence)`, (seed) => randomHistory(seed, true));
});
