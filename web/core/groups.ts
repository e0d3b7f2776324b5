/**
 * Groups live entirely in end-to-end messages: the state (id, name, members and their history,
 * versions) travels in 'group' control messages to every member, so the relay never learns
 * membership. Each change carries the author's whole state after the change; receivers merge
 * it with theirs (group-state.ts), so changes two members make at once are both kept and every
 * member converges on the same group. Changes are accepted only from a member (apply.ts).
 * Messages go to the current members only, so a removed member receives nothing new — the
 * removal itself is sent to them too, so their app knows.
 */
import type { Engine } from './engine.ts';
import { lookUp } from './directory.ts';
import * as state from './group-state.ts';
import { MAX_MEMBERS, MAX_ROSTER, newId } from './protocol/content.ts';
import type { ConversationRow } from './store/schema.ts';
import { EngineError } from './types.ts';
import { newConversation, newMessageRow } from './views.ts';

export async function createGroup(engine: Engine, name: string, members: readonly string[]): Promise<string> {
  const ctx = engine.ctx;
  const me = ctx.requireMe().username;
  const title = name.trim();
  if (!title || title.length > 128) throw new EngineError('invalid_name', 'Give the group a name (up to 128 characters).');
  const names = new Set<string>();
  for (const m of members) {
    const list = await lookUp(ctx, m);
    if (list.userId !== me) names.add(list.userId);
  }
  if (names.size + 1 > MAX_MEMBERS) throw new EngineError('too_many_members', `A group has at most ${MAX_MEMBERS} members.`);
  const group = state.create(newId(ctx.rng), title, [me, ...names], me);
  const id = `group:${group.id}`;
  const conv = state.withState(newConversation(id, 'group', title, [], ctx.now()), group, me);
  await engine.enqueue([...names], { t: 'group', id: group.id, ver: group.version }, { type: 'group', action: 'create', group }, (mid, at) => systemRow(me, ctx.requireMe().deviceB64, id, mid, at, `You created the group “${title}”`), conv);
  await engine.drainOutbox();
  return id;
}

export async function changeGroup(engine: Engine, groupId: string, action: 'add' | 'remove' | 'rename' | 'leave', arg: string): Promise<void> {
  const ctx = engine.ctx;
  const me = ctx.requireMe().username;
  // Change the group as it now stands: a change made on a stale view is merged correctly
  // anyway, but only the members this device knows of hear it from us directly.
  await engine.catchUp();
  const { conv } = await engine.route(groupId);
  if (conv.kind !== 'group') throw new EngineError('not_a_group', 'That conversation is not a group.');
  const before = state.stateOf(conv, me);
  let c: state.GroupChange;
  let subject: string | undefined;
  let text: string;
  if (action === 'add') {
    const user = (await lookUp(ctx, arg)).userId;
    if (before.members.includes(user)) throw new EngineError('already_member', `${user} is already in the group.`);
    if (before.members.length + 1 > MAX_MEMBERS) throw new EngineError('too_many_members', `A group has at most ${MAX_MEMBERS} members.`);
    if (!before.roster?.some((e) => e.user === user) && (before.roster?.length ?? 0) >= MAX_ROSTER) {
      throw new EngineError('too_many_members', `This group has had ${MAX_ROSTER} different members; start a new group to add someone new.`);
    }
    c = { action, user };
    subject = user;
    text = `You added ${user}`;
  } else if (action === 'remove') {
    // Someone who left can be removed too: the group then stops taking what they send (group-state.ts `admit`).
    if (arg === me || !(before.members.includes(arg) || state.leftOnly(before.roster?.find((e) => e.user === arg)))) throw new EngineError('not_member', `${arg} is not in the group.`);
    c = { action, user: arg };
    subject = arg;
    text = `You removed ${arg}`;
  } else if (action === 'leave') {
    c = { action };
    text = 'You left';
  } else {
    const name = arg.trim();
    if (!name || name.length > 128) throw new EngineError('invalid_name', 'Give the group a name (up to 128 characters).');
    c = { action, name };
    text = `You renamed the group to “${name}”`;
  }
  const after = state.change(before, c, me);
  // Everyone in the old or new state hears of the change (a removed member learns it was removed).
  const to = [...new Set([...before.members, ...after.members])].filter((m) => m !== me);
  // Merged into the row as it is when the outbox commits, so a state merged meanwhile (a
  // receive on the live socket) is kept rather than overwritten.
  const next = { id: groupId, update: (cur: ConversationRow) => ({ ...state.withState(cur, state.merge(state.stateOf(cur, me), after), me), lastActivity: ctx.now() }) };
  await engine.enqueue(to, { t: 'group', id: after.id, ver: after.version }, { type: 'group', action, group: after, ...(subject ? { subject } : {}) }, (mid, at) => systemRow(me, ctx.requireMe().deviceB64, groupId, mid, at, text), next);
  await engine.drainOutbox();
}

function systemRow(me: string, device: string, conversation: string, id: string, at: number, text: string) {
  return newMessageRow({ id, conversation, sender: me, senderDevice: device, sentAt: at, receivedAt: at, text, status: 'sent', system: true });
}
