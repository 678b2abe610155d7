// Runs the web UI's script (treadle/server/ui/app.js) in node against a real server, with a
// minimal DOM: enough for the elements, attributes, events and text the script uses.
//
//   node ui_harness.js SCRIPT BASE_URL TOKEN HASH EXPECT [BUTTON]
//
// Opens the page at HASH, waits until the view's text contains EXPECT, then (given BUTTON)
// clicks the first button with that label and waits for its action to end. Prints the view's
// text as JSON ({"text": ...}); exits 1 when EXPECT does not show within 10 s.
"use strict";

const fs = require("fs");
const vm = require("vm");

const [script, base, token, hash, expect, button] = process.argv.slice(2);

class Node {}

class Text extends Node {
  constructor(text) { super(); this.data = text; this.parent = null; }
  get textContent() { return this.data; }
}

class Element extends Node {
  constructor(tag) {
    super();
    this.tag = tag; this.attrs = {}; this.nodes = []; this.listeners = {};
    this.parent = null; this.hidden = false; this._value = undefined;
  }
  setAttribute(name, value) {
    this.attrs[name] = String(value);
    if (name === "hidden") this.hidden = true;
  }
  addEventListener(type, fn) { (this.listeners[type] ||= []).push(fn); }
  _adopt(nodes) {
    return nodes.map((n) => {
      const node = n instanceof Node ? n : new Text(String(n));  // as the DOM: null → "null"
      if (node.parent) node.parent.nodes = node.parent.nodes.filter((c) => c !== node);
      node.parent = this;
      return node;
    });
  }
  append(...nodes) { this.nodes.push(...this._adopt(nodes)); }
  prepend(...nodes) { this.nodes.unshift(...this._adopt(nodes)); }
  replaceChildren(...nodes) {
    for (const n of this.nodes) n.parent = null;
    this.nodes = this._adopt(nodes);
  }
  remove() {
    if (this.parent) this.parent.nodes = this.parent.nodes.filter((n) => n !== this);
    this.parent = null;
  }
  get children() { return this.nodes.filter((n) => n instanceof Element); }
  get lastChild() { return this.nodes[this.nodes.length - 1] || null; }
  get textContent() { return this.nodes.map((n) => n.textContent).join(""); }
  set textContent(text) { this.replaceChildren(new Text(String(text))); }
  get value() {
    if (this._value !== undefined) return this._value;
    if (this.tag === "select") {
      const options = this.children.filter((o) => o.tag === "option");
      const chosen = options.find((o) => "selected" in o.attrs) || options[0];
      return chosen ? (chosen.attrs.value ?? chosen.textContent) : "";
    }
    if (this.tag === "textarea") return this.textContent;
    return this.attrs.value ?? "";
  }
  set value(v) { this._value = String(v); }
  fire(type) {
    const event = { type, preventDefault() {}, name: type };
    return Promise.all((this.listeners[type] || []).map((fn) => fn(event)));
  }
  *walk() {
    yield this;
    for (const n of this.children) yield* n.walk();
  }
}

const byId = {};
for (const [id, tag] of [["view", "main"], ["toast", "div"], ["auth", "form"],
  ["token", "input"], ["forget", "button"], ["who", "span"]]) {
  byId[id] = new Element(tag);
}
const storage = new Map([["treadle.token", token]]);
const windowListeners = {};
const context = {
  Node,
  console,
  URLSearchParams,
  TextDecoderStream,
  AbortController,
  Promise,
  Date,
  JSON,
  setTimeout,
  clearTimeout,
  encodeURIComponent,
  decodeURIComponent,
  document: {
    createElement: (tag) => new Element(tag),
    createTextNode: (text) => new Text(text),
    getElementById: (id) => byId[id],
  },
  sessionStorage: {
    getItem: (k) => (storage.has(k) ? storage.get(k) : null),
    setItem: (k, v) => storage.set(k, String(v)),
    removeItem: (k) => storage.delete(k),
  },
  location: { hash },
  window: { addEventListener: (type, fn) => { (windowListeners[type] ||= []).push(fn); } },
  fetch: (url, options) => fetch(base + url, options),
};
vm.createContext(context);
vm.runInContext(fs.readFileSync(script, "utf8"), context, { filename: script });

const view = byId.view;
async function waitFor(check, what) {
  const deadline = Date.now() + 10000;
  for (;;) {
    if (check()) return;
    if (Date.now() > deadline) {
      console.log(JSON.stringify({ text: view.textContent, toast: byId.toast.textContent }));
      console.error(`timed out waiting for ${what}`);
      process.exit(1);
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
}

(async () => {
  await waitFor(() => view.textContent.includes(expect), JSON.stringify(expect));
  if (button) {
    const found = [...view.walk()].find((n) => n.tag === "button" && n.textContent === button);
    if (!found) {
      console.error(`no button ${button}`);
      process.exit(1);
    }
    await found.fire("click");
  }
  console.log(JSON.stringify({ text: view.textContent, toast: byId.toast.textContent }));
  process.exit(0);
})();
