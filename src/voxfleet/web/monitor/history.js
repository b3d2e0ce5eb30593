// The monitor's call history: filters over GET /api/calls, exports, and the
// inspector timeline of one call (GET /api/calls/{id}/timeline). It reuses the
// monitor's sign-in cookie; anonymous visitors are sent to the sign-in page.

const $ = (id) => document.getElementById(id);
const MARKS = ['speech_end', 'stt_done', 'llm_first_token', 'tts_first_audio', 'first_audio_sent'];
let nextBefore = null;

async function getJson(url) {
  const res = await fetch(url, { headers: { Accept: 'application/json' }, credentials: 'same-origin' });
  const body = await res.json().catch(() => null);
  if (!res.ok) {
    const err = new Error(body?.error?.message ?? `${url}: HTTP ${res.status}`);
    err.status = res.status;
    throw err;
  }
  return body;
}

function filterQuery() {
  const params = new URLSearchParams();
  for (const [name, value] of new FormData($('filters'))) {
    if (!value) continue;
    const isTime = name === 'from' || name === 'to';
    params.set(name, isTime ? new Date(value).toISOString() : value);
  }
  return params;
}

function showError(message) {
  $('error').textContent = message;
  $('error').hidden = !message;
}

function cell(row, text) {
  const td = document.createElement('td');
  td.textContent = text ?? '';
  row.append(td);
}

async function loadCalls(append) {
  const params = filterQuery();
  if (append && nextBefore) params.set('before', nextBefore);
  let page;
  try {
    page = await getJson(`/api/calls?${params}`);
  } catch (err) {
    showError(err.message);
    return;
  }
  showError('');
  const body = $('calls').tBodies[0];
  if (!append) body.replaceChildren();
  for (const call of page.calls) {
    const row = document.createElement('tr');
    row.dataset.id = call.id;
    cell(row, new Date(call.created_at).toLocaleString());
    cell(row, call.id);
    cell(row, call.profile);
    cell(row, call.status);
    cell(row, call.end_reason);
    cell(row, call.had_failover ? 'yes' : '');
    row.addEventListener('click', () => inspect(call.id, row));
    body.append(row);
  }
  nextBefore = page.next_before;
  $('more').hidden = !nextBefore;
}

function at(value) {
  return new Date(value).getTime();
}

function place(el, start, end, t0, span) {
  el.style.left = `${((start - t0) / span) * 100}%`;
  if (end !== null) el.style.width = `${Math.max(((end - start) / span) * 100, 0.3)}%`;
}

function drawTimeline(data) {
  const times = data.items.map((item) => at(item.at));
  const t0 = Math.min(...times, Date.now());
  const span = Math.max(Math.max(...times, t0 + 1) - t0, 1);
  const box = $('timeline');
  box.replaceChildren();
  for (const turn of data.turns) {
    const row = document.createElement('div');
    row.className = 'row turn-row';
    const label = document.createElement('span');
    label.className = 'label';
    label.textContent = `${turn.seq} ${turn.speaker}${turn.interrupted ? ' (interrupted)' : ''}: ${turn.text}`;
    const track = document.createElement('div');
    track.className = 'track';
    const bar = document.createElement('div');
    bar.className = 'turn';
    place(bar, at(turn.started_at), at(turn.ended_at), t0, span);
    track.append(bar);
    const { speech_end: from, first_audio_sent: to } = turn.marks;
    if (from && to) {
      const wait = document.createElement('div');
      wait.className = 'wait';
      wait.title = `${Math.round(at(to) - at(from))} ms from end of speech to audio out`;
      place(wait, at(from), at(to), t0, span);
      track.append(wait);
    }
    row.append(label, track);
    box.append(row);
  }
  const events = data.items.filter((item) => !MARKS.includes(item.kind) && !item.kind.startsWith('turn_'));
  const row = document.createElement('div');
  row.className = 'row';
  const label = document.createElement('span');
  label.className = 'label';
  label.textContent = 'events';
  const track = document.createElement('div');
  track.className = 'track';
  const list = $('events');
  list.replaceChildren();
  for (const event of events) {
    const marker = document.createElement('div');
    marker.className = `marker ${event.kind}`;
    marker.title = `${event.kind} ${JSON.stringify(event.detail)}`;
    place(marker, at(event.at), null, t0, span);
    track.append(marker);
    const item = document.createElement('li');
    item.className = `event ${event.kind}`;
    item.textContent = `${new Date(event.at).toLocaleTimeString()} ${event.kind} ${JSON.stringify(event.detail)}`;
    list.append(item);
  }
  row.append(label, track);
  box.append(row);
}

async function inspect(id, row) {
  for (const other of document.querySelectorAll('tr.selected')) other.classList.remove('selected');
  row.classList.add('selected');
  try {
    const data = await getJson(`/api/calls/${encodeURIComponent(id)}/timeline`);
    $('inspected').textContent = id;
    drawTimeline(data);
    $('inspector').hidden = false;
  } catch (err) {
    showError(err.message);
  }
}

function download(format) {
  const params = filterQuery();
  params.set('format', format);
  window.location.assign(`/api/calls/export?${params}`);
}

async function start() {
  try {
    const who = await getJson('/api/session');
    $('who').textContent = `${who.name} (${who.role})`;
  } catch (err) {
    if (err.status !== 401) showError(err.message);
    $('anonymous').hidden = false;
    return;
  }
  $('main').hidden = false;
  $('filters').addEventListener('submit', (event) => {
    event.preventDefault();
    loadCalls(false);
  });
  $('more').addEventListener('click', () => loadCalls(true));
  $('export-json').addEventListener('click', () => download('json'));
  $('export-csv').addEventListener('click', () => download('csv'));
  await loadCalls(false);
}

start();
