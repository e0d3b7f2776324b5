// Group changes made at the same time by different members, end to end: engines with in-memory
// stores against an in-process relay (app.request, no port), as in engine.test.ts. A device is
// made stale by cutting it off from the relay (offline) or only from its inbox (it can send but
// has not read what arrived), which is how the reported bug happened with the CLI.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { allMessages } from '../../web/core/views.ts';
import { Engine } from '../../web/core/engine.ts';
import type { Fetch } from '../../web/core/net/api.ts';
import { MemoryStore } from '../../web/core/store/memory-store.ts';
import { backends, startTestRelay, type TestRelay, uniqueName } from '../relay/harness.ts';

const BASE = 'http://relay.test';

describe.each(backends.slice(0, 1))('concurrent group changes on $name', (backend) => {
  let relay: TestRelay;
  const cut = new Map<Engine, 'offline' | 'inbox'>();

  async function device(): Promise<Engine> {
    let self: Engine | null = null;
    const fetch: Fetch = async (url, init) => {
      const c = self && cut.get(self);
      if (c === 'offline' || (c === 'inbox' && url.includes('/v1/inbox'))) throw new TypeError('fetch failed');
      return relay.app.request(url.slice(BASE.length), init as RequestInit);
    };
    self = await Engine.open({ store: new MemoryStore(), relayUrl: BASE, fetch });
    return self;
  }

  async function people(n = 3) {
    const es = await Promise.all(Array.from({ length: n }, () => device()));
    const names = ['alice', 'bob', 'carol', 'dave'].slice(0, n).map((p) => uniqueName(p));
    for (const [i, e] of es.entries()) await e.register(names[i]!, 'p');
    return { es, names };
  }

  /** Back on line: what waited in the outbox goes now rather than after its backoff. */
  async function reconnect(e: Engine): Promise<void> {
    cut.delete(e);
    await e.ctx.store.write(['outbox'], async (tx) => {
      for (const r of await tx.getAll('outbox')) await tx.put('outbox', { ...r, nextAttemptAt: 0 });
    });
    await e.drainOutbox();
  }

  /** Everyone reads their inbox until no device has anything left to pass on. */
  async function settle(es: readonly Engine[]): Promise<void> {
    for (let round = 0; round < 4; round++) for (const e of es) await e.sync();
  }

  const row = async (e: Engine, id: string) => (await e.conversations()).find((c) => c.id === id)!;
  const lines = async (e: Engine, id: string) => (await allMessages(e.ctx.store, id)).filter((m) => m.system).map((m) => m.text);

  beforeAll(async () => {
    relay = await startTestRelay(backend);
  });
  afterAll(async () => relay?.close());

  test('the reported scenario: bob leaves from a stale view while alice adds carol and renames', async () => {
    const { es, names } = await people();
    const [alice, bob, carol] = es as [Engine, Engine, Engine];
    const [an, bn, cn] = names as [string, string, string];
    const g = await alice.createGroup('team', [bn]);
    await bob.sync();
    // bob leaves without having seen what follows: his leave is made at version 2, from version 1.
    cut.set(bob, 'offline');
    await bob.leaveGroup(g);
    await alice.addMember(g, cn);
    await alice.renameGroup(g, 'team2'); // version 3
    await reconnect(bob);
    await settle(es);

    for (const [e, others] of [
      [alice, [cn]],
      [carol, [an]],
      [bob, [an, cn]],
    ] as const) {
      expect(await row(e, g)).toMatchObject({ title: 'team2', members: others, left: e === bob, groupVersion: 3 });
    }
    expect(await lines(alice, g)).toContain(`${bn} left`);
    expect(await lines(carol, g)).toContain(`${bn} left`);
    expect(await lines(bob, g)).toEqual([`${an} created the group “team”`, 'You left', `${an} added ${cn}`, `${an} renamed the group to “team2”`]);
    await expect(bob.send(g, 'hi all')).rejects.toMatchObject({ code: 'left_group' });
    await alice.send(g, 'after bob left');
    expect((await carol.sync()).map((m) => m.text)).toContain('after bob left');
    expect((await bob.sync()).map((m) => m.text)).not.toContain('after bob left');
  });

  test('the CLI sequence as reported (bob runs group-leave without sync): his leave now reads the inbox first', async () => {
    const { es, names } = await people();
    const [alice, bob, carol] = es as [Engine, Engine, Engine];
    const [an, bn, cn] = names as [string, string, string];
    const g = await alice.createGroup('team', [bn]);
    await bob.sync();
    await alice.addMember(g, cn);
    await alice.renameGroup(g, 'team2');
    await bob.leaveGroup(g);
    await settle(es);
    expect(await row(alice, g)).toMatchObject({ title: 'team2', members: [cn] });
    expect(await row(carol, g)).toMatchObject({ title: 'team2', members: [an] });
    expect(await row(bob, g)).toMatchObject({ title: 'team2', members: [an, cn], left: true });
    expect(await lines(carol, g)).toContain(`${bn} left`); // carol heard it from bob directly
  });

  test('the mirror: bob’s leave is on the relay before alice, who has not read it, adds carol and renames', async () => {
    const { es, names } = await people();
    const [alice, bob, carol] = es as [Engine, Engine, Engine];
    const [an, bn, cn] = names as [string, string, string];
    const g = await alice.createGroup('team', [bn]);
    await bob.sync();
    await bob.leaveGroup(g); // delivered to alice's inbox now
    cut.set(alice, 'inbox');
    await alice.addMember(g, cn);
    await alice.renameGroup(g, 'team2');
    cut.delete(alice);
    await settle(es);

    expect(await row(alice, g)).toMatchObject({ title: 'team2', members: [cn], left: false });
    expect(await row(carol, g)).toMatchObject({ title: 'team2', members: [an], left: false });
    expect(await row(bob, g)).toMatchObject({ left: true });
    expect((await row(bob, g)).members).not.toContain(bn);
    expect(await lines(alice, g)).toContain(`${bn} left`);
    expect(await lines(carol, g)).toContain(`${bn} left`);
  });

  test.each(['rename', 'leave'])('a rename and a leave at the same version reach carol %s first; all converge', async (first) => {
    const { es, names } = await people();
    const [alice, bob, carol] = es as [Engine, Engine, Engine];
    const [an, bn, cn] = names as [string, string, string];
    const g = await alice.createGroup('team', [bn, cn]);
    await settle(es);
    // Both change version 1 into version 2, neither having read the other's change.
    const moves = { rename: () => alice.renameGroup(g, 'team2'), leave: () => bob.leaveGroup(g) };
    const second = first === 'rename' ? 'leave' : 'rename';
    await moves[first as 'rename']();
    cut.set(second === 'rename' ? alice : bob, 'inbox');
    await moves[second]();
    cut.clear();
    await settle(es);

    expect(await row(alice, g)).toMatchObject({ title: 'team2', members: [cn], groupVersion: 2 });
    expect(await row(carol, g)).toMatchObject({ title: 'team2', members: [an], groupVersion: 2 });
    expect(await row(bob, g)).toMatchObject({ title: 'team2', members: [an, cn], left: true });
    for (const e of [alice, carol]) expect(await lines(e, g)).toContain(`${bn} left`);
  });

  test('a group send catches up first, so it reaches a member added meanwhile; sync still reports what arrived', async () => {
    const { es, names } = await people();
    const [alice, bob, carol] = es as [Engine, Engine, Engine];
    const [an, , cn] = names as [string, string, string];
    const g = await alice.createGroup('team', [names[1]!]);
    await bob.sync();
    await alice.addMember(g, cn);
    await carol.sync();
    await bob.send(g, 'hi all'); // bob has not synced since carol was added
    expect((await carol.sync()).map((m) => m.text)).toContain('hi all');
    // What bob's send caught up on is still reported by his next sync (the CLI prints it).
    expect((await bob.sync()).map((m) => m.text)).toContain(`${an} added ${cn}`);
    expect(await bob.sync()).toEqual([]);
  });
});
