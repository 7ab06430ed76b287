// What parley.js needs from a browser, for Node: a WebSocket (the `ws`
// package on Node 20, which has no global one), the window and document
// it listens on for online/offline/storage/visibility (plain
// EventTargets: Node has no such events), and a Storage for the outbox.
// Import this before parley.js.
import { WebSocket as WS } from 'ws';

if (typeof globalThis.WebSocket !== 'function') globalThis.WebSocket = WS;
if (!globalThis.window) globalThis.window = new EventTarget();
if (!globalThis.document) {
  const doc = new EventTarget();
  doc.visibilityState = 'visible';
  globalThis.document = doc;
}

/** MemoryStorage is the Web Storage API over a Map (one per "device"). */
export class MemoryStorage {
  #m = new Map();
  get length() {
    return this.#m.size;
  }
  key(i) {
    return [...this.#m.keys()][i] ?? null;
  }
  getItem(k) {
    return this.#m.has(k) ? this.#m.get(k) : null;
  }
  setItem(k, v) {
    this.#m.set(k, String(v));
  }
  removeItem(k) {
    this.#m.delete(k);
  }
  clear() {
    this.#m.clear();
  }
}
