/**
 * A group's name and membership as a state that merges: a join-semilattice (a state-based CRDT,
 * Shapiro et al., "Conflict-free Replicated Data Types", 2011), so every device that has seen
 * the same changes holds the same group, whatever order they arrived in, and two members
 * changing the group at once lose neither change.
 *
 *  - Versions are a Lamport clock: a change is one above the highest version its author has
 *    seen, and is tagged [version, author]. Tags order by version, then author.
 *  - The name is the one with the highest tag (then the greater name, for two devices of one
 *    person renaming at the same version).
 *  - Per person: the latest add, the latest version of each remover's removal (`out`, keyed by
 *    remover; a leave is the person removing themself), and of those what the people who added
 *    them had seen (`seen`). A person is a member once added and while every removal was seen by
 *    an add. So a removal or leave made concurrently with an add wins over it, and a leave is
 *    never undone by someone else's concurrent change; re-adding someone after seeing them leave
 *    still works.
 *
 * Merging takes the maximum of every field: commutative, associative and idempotent. Members
 * who learn, by merging, something the sender of a change did not know pass the merged state on
 * (apply.ts), so every member ends up with every change.
 *
 * Who may change the group is the one rule that depends on what a device has already seen
 * (`admit`): a change is taken from a member as the receiver knows the group, and from someone
 * who left of their own accord (what their other devices did before hearing of the leave, or a
 * state they pass on); an invitation back in is judged like one into a new group. A removed
 * member's changes are refused, or removal would not stop anyone. So a change made just as its
 * author was removed counts if some member took it before hearing of the removal: that member
 * passes it on, and a member who refused it passes on what it knew, so the members agree. The
 * removed author, who still counts themself in, is sent a removal notice (`notice`): their own
 * roster entry and nothing else, once for each version of it, so they can read neither the
 * members nor the name by sending changes. They take a notice only from someone they count as
 * a member, and it only adds to their own entry (merged as any state is), so it can put them
 * out but never anyone else; a notice is never answered. When removals cross (each side
 * removing someone the other side still counts), members who no longer count each other as
 * members can keep different views; each refuses the other's messages and notices. Adds,
 * leaves and renames alone always converge (test/core/group-sync.test.ts).
 */
import type { GroupAction, GroupState, GroupTag, RosterEntry } from './protocol/content.ts';
import type { ConversationRow } from './store/schema.ts';

/** What one person does to a group (`leave`: the author leaves). */
export type GroupChange =
  | { readonly action: 'add' | 'remove'; readonly user: string }
  | { readonly action: 'leave' }
  | { readonly action: 'rename'; readonly name: string };

/** States kept from before the mergeable state name their changes with this author (ordered first). */
const LEGACY = '';

export function compareTags(a: GroupTag | undefined, b: GroupTag | undefined): number {
  if (!a || !b) return (a ? 1 : 0) - (b ? 1 : 0);
  return a[0] - b[0] || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0);
}

const maxTag = (a: GroupTag | undefined, b: GroupTag | undefined) => (compareTags(a, b) >= 0 ? a : b);

type Versions = readonly (readonly [string, number])[];

/** Pointwise maximum, sorted by person; undefined when empty (states compare by their JSON). */
function maxVersions(a: Versions | undefined, b: Versions | undefined): Versions | undefined {
  const m = new Map<string, number>();
  for (const [u, v] of [...(a ?? []), ...(b ?? [])]) m.set(u, Math.max(v, m.get(u) ?? 0));
  return m.size ? [...m].sort(([x], [y]) => (x < y ? -1 : 1)) : undefined;
}

export function isMember(e: RosterEntry | undefined): boolean {
  if (!e?.added) return false;
  const seen = new Map(e.seen ?? []);
  // A removal from a state kept from before the mergeable state has no author to match; any add
  // with a higher version counts as having seen it (those states had only version order).
  return (e.out ?? []).every(([by, v]) => (seen.get(by) ?? -1) >= v || (by === LEGACY && e.added![0] > v));
}

function entry(user: string, added: GroupTag | undefined, out: Versions | undefined, seen: Versions | undefined): RosterEntry {
  return { user, ...(added ? { added } : {}), ...(out ? { out } : {}), ...(seen ? { seen } : {}) };
}

/** The state with `members` and `version` derived from the tags and the roster in canonical order. */
function finish(id: string, name: string, nameTag: GroupTag, roster: Iterable<RosterEntry>): GroupState {
  const sorted = [...roster].sort((a, b) => (a.user < b.user ? -1 : 1));
  let version = nameTag[0];
  for (const e of sorted) for (const v of [e.added?.[0] ?? 0, ...(e.out ?? []).map((x) => x[1])]) version = Math.max(version, v);
  return { id, name, members: sorted.filter(isMember).map((e) => e.user), version, nameTag, roster: sorted };
}

export function merge(a: GroupState, b: GroupState): GroupState {
  const byUser = new Map<string, RosterEntry>();
  for (const e of [...(a.roster ?? []), ...(b.roster ?? [])]) {
    const o = byUser.get(e.user);
    byUser.set(e.user, o ? entry(e.user, maxTag(o.added, e.added), maxVersions(o.out, e.out), maxVersions(o.seen, e.seen)) : entry(e.user, e.added, maxVersions(e.out, undefined), maxVersions(e.seen, undefined)));
  }
  const c = compareTags(a.nameTag, b.nameTag);
  const [name, nameTag] = c > 0 || (c === 0 && a.name >= b.name) ? [a.name, a.nameTag!] : [b.name, b.nameTag!];
  return finish(a.id, name, nameTag, byUser.values());
}

/** Same name and membership history (the version follows from them). */
export function same(a: GroupState, b: GroupState): boolean {
  return a.name === b.name && JSON.stringify([a.nameTag, a.roster]) === JSON.stringify([b.nameTag, b.roster]);
}

export function create(id: string, name: string, members: readonly string[], author: string): GroupState {
  const tag: GroupTag = [1, author];
  return finish(id, name, tag, [...new Set(members)].map((u) => entry(u, tag, undefined, undefined)));
}

/** `g` with `author`'s change, one version above everything in `g`. */
export function change(g: GroupState, c: GroupChange, author: string): GroupState {
  const tag: GroupTag = [g.version + 1, author];
  return applyTagged(g, c, tag);
}

function applyTagged(g: GroupState, c: GroupChange, tag: GroupTag): GroupState {
  if (c.action === 'rename') return merge(g, finish(g.id, c.name, tag, []));
  const user = c.action === 'leave' ? tag[1] : c.user;
  const old = g.roster?.find((e) => e.user === user);
  const mine =
    c.action === 'add'
      ? entry(user, tag, undefined, maxVersions(old?.seen, old?.out)) // this add has seen every removal we know of
      : entry(user, undefined, [[tag[1], tag[0]]], undefined);
  return merge(g, finish(g.id, g.name, g.nameTag ?? [0, LEGACY], [mine]));
}

/**
 * The removal notice for `user`, removed by someone else (`removed`): their own roster entry and
 * nothing else — no name, no other member, and for version only the highest in that entry
 * (content.ts checks this shape). It tells them who put them out and when, which they are owed;
 * merged into their state (`merge` keeps their name, the notice having none) it puts them out.
 */
export function notice(g: GroupState, user: string): GroupState {
  const { nameTag, ...n } = finish(g.id, '', [0, LEGACY], g.roster!.filter((e) => e.user === user));
  return n;
}

/**
 * The state a received group message stands for. A state with a roster is taken as sent (its
 * `members` and `version` recomputed from the tags). An older client's message has no roster:
 * it is read as the one change its action names, made by its sender at its version — never as
 * a snapshot, which would undo changes its sender had not seen.
 */
export function fromMessage(have: GroupState | null, action: GroupAction, g: GroupState, subject: string | undefined, sender: string): GroupState | null {
  if (g.roster) {
    // Through merge, so a roster naming someone twice is folded into one entry.
    const bare = finish(g.id, g.name, g.nameTag ?? [0, LEGACY], []);
    return merge(bare, { ...bare, roster: g.roster });
  }
  const tag: GroupTag = [g.version, sender];
  if (!have) return finish(g.id, g.name, tag, g.members.map((u) => entry(u, tag, undefined, undefined)));
  switch (action) {
    case 'create':
      return merge(have, finish(g.id, g.name, tag, g.members.map((u) => entry(u, tag, undefined, undefined))));
    case 'add': {
      const added = subject ? [subject] : g.members.filter((u) => !have.members.includes(u));
      return added.reduce((s, user) => applyTagged(s, { action: 'add', user }, tag), have);
    }
    case 'remove':
      return subject ? applyTagged(have, { action: 'remove', user: subject }, tag) : null;
    case 'leave':
      return applyTagged(have, { action: 'leave' }, tag);
    case 'rename':
      return applyTagged(have, { action: 'rename', name: g.name }, tag);
    case 'merge':
    case 'removed-notice':
      return null; // only sent with a roster (apply.ts reads a notice itself)
  }
}

/**
 * What we take from a received state: all of it from ourselves (our other devices), from a
 * member as we know the group (for a group new to us, or an invitation back in: as the sender
 * knows it) and from someone who left of their own accord (members can remove them too, to stop
 * that); from a removed member only their own leave, which can only take them out. Anything
 * else is refused (null): a removed member must not keep changing the group.
 */
export function admit(have: GroupState | null, theirs: GroupState, sender: string, me: string): GroupState | null {
  if (sender === me || (have ?? theirs).members.includes(sender)) return theirs;
  if (!have) return null;
  // An invitation back into a group we are out of is judged like one into a new group: by the
  // sender's own state (whoever added them may have done so while we were away).
  if (!have.members.includes(me) && theirs.members.includes(sender) && merge(have, theirs).members.includes(me)) return theirs;
  const mine = have.roster?.find((e) => e.user === sender);
  // Out only by their own leave: they chose to go and were not put out, so what they send is
  // taken like a member's — a change one of their devices made before it heard of the leave,
  // or a merged state passed on (they may be the only one who knew of some change).
  if (leftOnly(mine) && !merge(have, theirs).members.includes(sender)) return theirs; // but not to add themself back
  const left = new Map(theirs.roster?.find((e) => e.user === sender)?.out ?? []).get(sender);
  const known = new Map(mine?.out ?? []).get(sender) ?? -1;
  return left !== undefined && left > known ? applyTagged(have, { action: 'leave' }, [left, sender]) : null;
}

/** Left of their own accord (and not re-added): they can still be removed, see `admit`. */
export function leftOnly(e: RosterEntry | undefined): boolean {
  return !!e?.added && !isMember(e) && !removed(e);
}

/** Put out by someone else, in a way no add of them has seen: a removed member. */
export function removed(e: RosterEntry | undefined): boolean {
  const seen = new Map(e?.seen ?? []);
  return (e?.out ?? []).some(([by, v]) => by !== e!.user && (seen.get(by) ?? -1) < v && !(by === LEGACY && e!.added && e!.added[0] > v));
}

/** A conversation row's group state; a row stored before the mergeable state is read as its snapshot. */
export function stateOf(conv: ConversationRow, me: string): GroupState {
  if (conv.groupState) return conv.groupState;
  const tag: GroupTag = [conv.groupVersion, LEGACY];
  const roster = [me, ...conv.members].map((u) => entry(u, tag, u === me && conv.left ? [[LEGACY, conv.groupVersion]] : undefined, undefined));
  return finish(conv.id.slice('group:'.length), conv.title, tag, roster);
}

/** The row showing `g`: title, the other members, the version, and whether we are out. */
export function withState(conv: ConversationRow, g: GroupState, me: string): ConversationRow {
  return { ...conv, title: g.name, members: g.members.filter((u) => u !== me), groupVersion: g.version, left: !g.members.includes(me), groupState: g };
}

/** What changed between two states, as system lines ("bob left", "You renamed the group to “x”"). */
export function describe(before: GroupState, after: GroupState, me: string): string[] {
  const who = (u: string) => (u === me ? 'You' : u || 'Someone');
  const whom = (u: string) => (u === me ? 'you' : u);
  const lines: string[] = [];
  for (const e of after.roster ?? []) {
    const was = before.members.includes(e.user);
    if (isMember(e) && !was) lines.push(`${who(e.added![1])} added ${whom(e.user)}`);
    if (!isMember(e) && was) {
      // The removal nobody's add had seen is the one that put them out.
      const seen = new Map(e.seen ?? []);
      const [by] = (e.out ?? []).filter(([u, v]) => (seen.get(u) ?? -1) < v).sort((x, y) => y[1] - x[1])[0] ?? [LEGACY];
      lines.push(by === e.user ? `${who(e.user)} left` : `${who(by)} removed ${whom(e.user)}`);
    }
  }
  if (after.name !== before.name) lines.push(`${who(after.nameTag?.[1] ?? LEGACY)} renamed the group to “${after.name}”`);
  return lines;
}
