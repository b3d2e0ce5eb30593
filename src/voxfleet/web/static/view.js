// The page's side of a call: status pills, notices, the mic level and toasts.
// A Call reports to it and never touches the DOM itself.

const CONN_LABEL = {
  idle: 'Idle', connecting: 'Connecting…', connected: 'Connected', reconnecting: 'Reconnecting…',
  ended: 'Call ended', error: 'Error',
};
/** Close codes after which the call is over for this page: it does not resume. */
export const AGENT_LABEL = {
  queued: 'Waiting for a free agent…', listening: 'Listening', thinking: 'Thinking…', speaking: 'Speaking',
};

const TOAST_MS = 6000;

const $ = (id) => document.getElementById(id);
export const els = {
  talk: $('talk'), talkLabel: $('talk-label'), profileField: $('profile-field'), profile: $('profile'),
  connPill: $('conn-pill'), agentPill: $('agent-pill'), notice: $('notice'), toast: $('toast'),
  captions: $('captions'),
};

/** Profile name -> title, filled from GET /api/profiles. */
export const profileTitles = new Map();

// ---------------------------------------------------------------- view

/** The page's side of a call; a Call reports to it and never touches the DOM itself. */
export const view = {
  conn(state) {
    document.body.dataset.connState = state;
    setPill(els.connPill, state, CONN_LABEL[state] ?? state);
    const live = state === 'connecting' || state === 'connected' || state === 'reconnecting';
    els.talk.dataset.mode = live ? 'end' : 'talk';
    els.talkLabel.textContent = live ? 'End' : 'Talk';
    els.talk.setAttribute('aria-label', live ? 'End the call' : 'Talk: start a call');
    els.profile.disabled = live;
    if (!live) this.agent('');
  },

  agent(state) {
    document.body.dataset.agentState = state;
    els.agentPill.hidden = !state;
    setPill(els.agentPill, state, AGENT_LABEL[state] ?? state);
  },

  playback(state) {
    document.body.dataset.playback = state;
  },

  /** Microphone loudness 0..1, drawn as a ring around the button so people see they are heard. */
  level(rms) {
    const shown = Math.min(1, Math.sqrt(rms) * 2.5);
    els.talk.style.setProperty('--level', shown.toFixed(3));
  },

  notice(text, kind = 'info') {
    els.notice.hidden = !text;
    els.notice.textContent = text;
    els.notice.dataset.kind = kind;
  },

  /** A short-lived, unobtrusive line; `toast('')` hides it. */
  toast(text) {
    els.toast.textContent = text;
    els.toast.hidden = !text;
    clearTimeout(this.toastTimer);
    this.toastTimer = setTimeout(() => { els.toast.hidden = true; }, TOAST_MS);
  },
};

function setPill(pill, state, text) {
  pill.dataset.state = state;
  pill.querySelector('.pill-text').textContent = text;
}
