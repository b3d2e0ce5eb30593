// The operations page: sign in, then the live rooms and agents (live.js),
// the demand, the latency chart (chart.js) and, for admins, end a call or
// drain an agent. All text goes in with textContent: nothing is parsed as HTML.

import { ApiError, canChange, drainAgent, endCall, signIn, signOut, whoAmI } from '/monitor/api.js';
import { LatencyChart } from '/monitor/chart.js';
import { LiveFeed } from '/monitor/live.js';

const $ = (id) => document.getElementById(id);
let user = null;
let feed = null;
let chart = null;

function cell(row, text) {
  const td = row.insertCell();
  td.textContent = text;
  return td;
}

function button(row, label, action) {
  const td = row.insertCell();
  if (user?.role !== 'admin' || !canChange()) return;
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = label;
  b.addEventListener('click', async () => {
    b.disabled = true;
    $('action-error').textContent = '';
    try {
      await action();
    } catch (err) {
      $('action-error').textContent = err instanceof ApiError ? err.message : String(err);
      b.disabled = false;
    }
  });
  td.append(b);
}

function duration(startedAt) {
  if (!startedAt) return '–';
  const s = Math.max(0, Math.round(Date.now() / 1000 - startedAt));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

function render(state) {
  const rooms = $('rooms').tBodies[0];
  rooms.replaceChildren();
  for (const room of state.rooms.values()) {
    const row = rooms.insertRow();
    row.dataset.room = room.room_id;
    cell(row, room.room_id);
    cell(row, room.profile ?? '–');
    cell(row, room.agent_id ?? 'waiting');
    cell(row, room.state ?? '–');
    cell(row, duration(room.started_at)).className = 'duration';
    row.lastChild.dataset.started = room.started_at ?? '';
    cell(row, room.last_utterance ?? '–').className = 'utterance';
    cell(row, String(room.failovers ?? 0));
    const watch = row.insertCell().appendChild(document.createElement('button'));
    watch.type = 'button';
    watch.textContent = 'Transcript';
    watch.addEventListener('click', () => watchCall(room.room_id));
    button(row, 'End call', () => endCall(room.room_id));
  }
  $('room-count').textContent = String(state.rooms.size);
  const agents = $('agents').tBodies[0];
  agents.replaceChildren();
  for (const agent of state.agents.values()) {
    const row = agents.insertRow();
    cell(row, agent.agent_id);
    const load = agent.model_load == null ? '' : `, models ${Math.round(agent.model_load * 100)}% busy`;
    cell(row, `${agent.active} / ${agent.capacity}${load}`);
    cell(row, agent.draining ? 'draining' : agent.ready ? 'ready' : 'starting');
    const lag = agent.loop_lag_ms == null ? '' : `, loop lag ${agent.loop_lag_ms} ms`;
    cell(row, `${Math.max(0, Math.round(Date.now() / 1000 - agent.seen))} s ago${lag}`);
    if (agent.draining) row.insertCell();
    else button(row, 'Drain', () => drainAgent(agent.agent_id));
  }
  $('agent-count').textContent = String(state.agents.size);
  const s = state.scaling;
  if (s) {
    $('scaling').textContent =
      `${s.active_rooms} active + ${s.queued_rooms} queued rooms; ` +
      `${s.live_agents} agents live (${s.draining_agents} draining), ${s.desired_agents} desired`;
  }
}

function watchCall(callId) {
  $('watch').hidden = false;
  $('watch-id').textContent = callId;
  $('captions').replaceChildren();
  feed.watch(callId);
}

function caption(message) {
  if (message.call_id !== feed?.watching) return;
  // A later text of the same role and seq replaces the earlier one.
  const key = `${message.role}-${message.seq}`;
  let item = $('captions').querySelector(`li[data-key="${key}"]`);
  if (!item) {
    item = $('captions').appendChild(document.createElement('li'));
    item.dataset.key = key;
  }
  item.className = message.final ? 'final' : 'partial';
  item.textContent = `${message.role}: ${message.text}`;
}

function status(text) {
  const link = $('link');
  link.textContent = text;
  link.classList.toggle('live', text === 'live');
  if (text === 'signed-out') showSignIn();
}

function showDashboard(who) {
  user = who;
  $('sign-in').hidden = true;
  $('dashboard').hidden = false;
  $('who').hidden = $('link').hidden = $('sign-out').hidden = false;
  $('who').textContent = `${who.name} (${who.role}${canChange() ? '' : ', read only until you sign in again'})`;
  feed = new LiveFeed(render, status, caption);
  feed.start();
  chart ??= new LatencyChart($('chart'), $('chart-note'));
  chart.start();
}

function showSignIn() {
  feed?.stop();
  chart?.stop();
  user = null;
  $('dashboard').hidden = true;
  $('who').hidden = $('link').hidden = $('sign-out').hidden = true;
  $('sign-in').hidden = false;
}

$('sign-in').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  $('sign-in-error').textContent = '';
  try {
    showDashboard(await signIn(form.get('name'), form.get('password')));
  } catch (err) {
    $('sign-in-error').textContent = err.message;
  }
});

$('sign-out').addEventListener('click', async () => {
  await signOut();
  showSignIn();
});

setInterval(() => {
  for (const td of document.querySelectorAll('td.duration')) {
    td.textContent = duration(Number(td.dataset.started) || null);
  }
}, 1000);

const who = await whoAmI();
if (who) showDashboard(who);
else showSignIn();
