// Model output as Markdown: marked parses, highlight.js colours code, DOMPurify sanitizes.
//
// Model output is untrusted. Three layers keep it inert:
//  1. raw HTML in the Markdown is shown as text, never parsed (the `html` renderer escapes it);
//  2. the HTML marked produces goes through DOMPurify (drops scripts, event handlers,
//     javascript: URLs, forms, styles) and comes back as DOM nodes, never as a string;
//  3. the page's CSP allows no inline script (tests check 1 and 2 with the CSP off).
// Images are not loaded (they could track the reader): they become links.

import DOMPurify from "dompurify";
import { Marked, type Tokens } from "marked";
import hljs from "highlight.js/lib/core";
import bash from "highlight.js/lib/languages/bash";
import diff from "highlight.js/lib/languages/diff";
import go from "highlight.js/lib/languages/go";
import javascript from "highlight.js/lib/languages/javascript";
import json from "highlight.js/lib/languages/json";
import python from "highlight.js/lib/languages/python";
import rust from "highlight.js/lib/languages/rust";
import sql from "highlight.js/lib/languages/sql";
import xml from "highlight.js/lib/languages/xml";
import yaml from "highlight.js/lib/languages/yaml";
import { h } from "./dom";

// A few common languages keep the bundle small; others show uncoloured (TypeScript as JavaScript).
const LANGUAGES = { bash, diff, go, javascript, json, python, rust, sql, xml, yaml };
for (const [name, lang] of Object.entries(LANGUAGES)) hljs.registerLanguage(name, lang);
hljs.registerAliases(["sh", "shell", "zsh", "console"], { languageName: "bash" });
hljs.registerAliases(["html", "svg"], { languageName: "xml" });
hljs.registerAliases(["js", "jsx", "mjs", "ts", "tsx", "typescript"], { languageName: "javascript" });
hljs.registerAliases(["py"], { languageName: "python" });
hljs.registerAliases(["yml"], { languageName: "yaml" });
hljs.registerAliases(["rs"], { languageName: "rust" });
hljs.registerAliases(["patch"], { languageName: "diff" });

/** Code longer than this is shown without colours: highlighting runs on every streamed chunk. */
const HIGHLIGHT_MAX_CHARS = 20_000;

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Highlighted HTML of `code` (spans with hljs classes only), or the escaped text. */
export function highlight(code: string, lang?: string): { html: string; language: string } {
  const name = (lang ?? "").trim().split(/\s+/)[0]?.toLowerCase() ?? "";
  if (code.length <= HIGHLIGHT_MAX_CHARS && name && hljs.getLanguage(name)) {
    return { html: hljs.highlight(code, { language: name, ignoreIllegals: true }).value, language: name };
  }
  return { html: escapeHtml(code), language: name };
}

const marked = new Marked({
  gfm: true,
  breaks: true,
  async: false,
  renderer: {
    html({ text }: Tokens.HTML | Tokens.Tag): string {
      return escapeHtml(text);
    },
    code({ text, lang }: Tokens.Code): string {
      const { html, language } = highlight(text, lang);
      const cls = language ? ` class="hljs language-${escapeHtml(language)}"` : ` class="hljs"`;
      return `<pre><code${cls}>${html}</code></pre>\n`;
    },
    image({ href, text }: Tokens.Image): string {
      return `<a href="${escapeHtml(href)}">${escapeHtml(text || href)}</a>`;
    },
  },
});

const PURIFY = {
  FORBID_TAGS: ["style", "img", "form", "input", "button", "textarea", "select", "iframe", "svg", "math"],
  FORBID_ATTR: ["style", "id", "name"],
  ALLOW_DATA_ATTR: false,
};

DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A") {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer nofollow");
  }
});

/** Sanitized DOM nodes for `text` rendered as Markdown (code blocks get a header with a copy button). */
export function renderMarkdown(text: string): DocumentFragment {
  const html = marked.parse(text) as string;
  const frag = DOMPurify.sanitize(html, { ...PURIFY, RETURN_DOM_FRAGMENT: true });
  for (const pre of Array.from(frag.querySelectorAll("pre"))) decorateCode(pre);
  // The newlines marked puts between blocks render as nothing: dropped, so the text of a
  // streamed answer only ever grows at its end.
  for (const node of Array.from(frag.childNodes)) {
    if (node.nodeType === Node.TEXT_NODE && !node.textContent?.trim()) node.remove();
  }
  return frag;
}

function decorateCode(pre: HTMLPreElement): void {
  const code = pre.querySelector("code");
  const lang = /language-(\S+)/.exec(code?.className ?? "")?.[1] ?? "";
  pre.tabIndex = 0; // a long line scrolls sideways: keyboard users reach it too
  const label = lang ? `Code (${lang})` : "Code";
  pre.setAttribute("aria-label", label);
  const wrap = h(
    "div",
    { class: "code-block" },
    h(
      "div",
      { class: "code-head" },
      h("span", { class: "code-lang" }, lang || "text"),
      h("button", { type: "button", class: "copy", "data-copy": "", "aria-label": `Copy ${label.toLowerCase()}` }, "Copy"),
    ),
  );
  pre.replaceWith(wrap);
  wrap.append(pre);
}

/** `code` highlighted as `lang`, as sanitized DOM nodes (for tool arguments and results). */
export function highlightedCode(code: string, lang: string): DocumentFragment {
  return DOMPurify.sanitize(highlight(code, lang).html, { ...PURIFY, RETURN_DOM_FRAGMENT: true });
}

/** Render `text` into `el`, replacing what it showed. */
export function renderInto(el: HTMLElement, text: string): void {
  el.replaceChildren(renderMarkdown(text));
}

async function copyText(text: string): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // No clipboard API (an insecure origin) or no permission: the old way, through a selection.
    const area = h("textarea", { class: "sr-only", "aria-hidden": "true" }, text);
    document.body.append(area);
    area.select();
    const ok = document.execCommand("copy");
    area.remove();
    return ok;
  }
}

/** One listener for every copy button, present and future. */
export function installCopyButtons(root: HTMLElement): void {
  root.addEventListener("click", (ev) => {
    const btn = (ev.target as HTMLElement).closest<HTMLButtonElement>("button[data-copy]");
    if (!btn) return;
    const code = btn.closest(".code-block")?.querySelector("code");
    if (!code) return;
    void copyText(code.textContent ?? "").then((ok) => {
      btn.textContent = ok ? "Copied" : "Copy failed";
      btn.dataset.copied = ok ? "true" : "false";
      window.setTimeout(() => {
        btn.textContent = "Copy";
        delete btn.dataset.copied;
      }, 2000);
    });
  });
}
