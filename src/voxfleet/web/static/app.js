// The landing page: wires the Talk button to a Call, loads the agent profiles.
// The parts: view.js (status and notices), captions.js, api.js (HTTP, devices),
// call.js (the socket and audio of one call).

import { fetchProfiles } from './api.js';
import { Call } from './call.js';
import { Captions } from './captions.js';
import { els, profileTitles, view } from './view.js';

// ---------------------------------------------------------------- wiring

const captions = new Captions(els.captions);
let current = null;

function onTalk() {
  if (current && !current.done) {
    current.hangUp();
    return;
  }
  view.notice('');
  view.toast('');
  captions.clear();
  const call = new Call(captions, () => current === call);
  current = call;
  current.start(els.profileField.hidden ? '' : els.profile.value);
}

async function loadProfiles() {
  try {
    const { profiles, default: fallback } = await fetchProfiles();
    const options = profiles
      .filter((p) => typeof p?.name === 'string')
      .map((p) => {
        profileTitles.set(p.name, p.title || p.name);
        return new Option(p.title || p.name, p.name, false, p.name === fallback);
      });
    if (options.length === 0) return;
    els.profile.replaceChildren(...options);
    els.profileField.hidden = false;
  } catch {
    // Calls still work without the list: the server then picks its default profile.
    els.profileField.hidden = true;
  }
}

els.talk.addEventListener('click', onTalk);
// Leaving the page hangs up properly, so the call is recorded as ended by the caller.
window.addEventListener('pagehide', () => current?.hangUp());
view.conn('idle');
loadProfiles();
