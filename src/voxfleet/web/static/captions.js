// The live captions: one <li> per turn, keyed by role and the turn's `seq`.

// ---------------------------------------------------------------- captions

/** The scrolling transcript: one <li> per turn, keyed by role and `seq`. */
export class Captions {
  constructor(list) {
    this.list = list;
    this.turns = new Map();
  }

  clear() {
    this.list.replaceChildren();
    this.turns.clear();
  }

  /** Apply one `transcript` message; later texts of the same turn replace earlier ones. */
  update(msg, agentLabel) {
    const { role, seq } = msg;
    if ((role !== 'user' && role !== 'agent') || typeof seq !== 'number') return;
    const key = `${role}:${seq}`;
    const text = typeof msg.text === 'string' ? msg.text.trim() : '';
    const final = msg.final === true;
    const interrupted = msg.interrupted === true;
    let item = this.turns.get(key);
    // A late interim result must not reopen a turn that is already final.
    if (item && item.dataset.final === 'true' && !final) return;
    if (!text && !interrupted) {
      if (final && item) this.remove(key, item); // the turn came to nothing (noise, a cough)
      return;
    }
    const stick = this.atBottom();
    if (!item) {
      item = this.create(role, seq, role === 'user' ? 'You' : agentLabel);
      this.turns.set(key, item);
      this.insert(item, seq);
    }
    item.querySelector('.caption-text').textContent = text;
    item.dataset.final = String(final);
    item.setAttribute('aria-busy', String(!final)); // let screen readers wait for the settled text
    item.querySelector('.caption-tag').hidden = !interrupted;
    item.classList.toggle('is-interrupted', interrupted);
    if (stick) this.list.scrollTop = this.list.scrollHeight;
  }

  create(role, seq, label) {
    const item = document.createElement('li');
    item.className = 'caption';
    item.dataset.role = role;
    item.dataset.seq = String(seq);
    item.dataset.final = 'false';
    const who = document.createElement('span');
    who.className = 'caption-who';
    who.textContent = label;
    const tag = document.createElement('span');
    tag.className = 'caption-tag';
    tag.textContent = 'interrupted';
    tag.hidden = true;
    const text = document.createElement('p');
    text.className = 'caption-text';
    item.append(who, tag, text);
    return item;
  }

  /** Keep turns in `seq` order even if a caption for an earlier turn arrives late. */
  insert(item, seq) {
    const later = [...this.list.children].find((li) => Number(li.dataset.seq) > seq);
    this.list.insertBefore(item, later ?? null);
  }

  remove(key, item) {
    item.remove();
    this.turns.delete(key);
  }

  /** Follow new captions only if the reader has not scrolled up to read back. */
  atBottom() {
    const { scrollHeight, scrollTop, clientHeight } = this.list;
    return scrollHeight - scrollTop - clientHeight < 48;
  }
}
