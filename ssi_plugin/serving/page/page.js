// The search page of ssi-plugin serve: it sends the ssi search any frontend sends and draws the answer.
// No framework and no other host: every request goes to the serve endpoint that delivered this file.
"use strict";

const SLOT_NAMES = ["objects", "actions", "attributes", "scene"];
const SHOWN_PROBABILITY = 0.005;  // candidates below it are folded away; concepts with less support are not highlighted
const $ = (id) => document.getElementById(id);

const state = { index: "", image: null };  // image: {dataUrl, name, preview} while an image is the query

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "text") node.textContent = value;
    else node.setAttribute(name, value);
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

// "objects: dog, frisbee | scene: park | #2" -> [["objects", ["dog", "frisbee"]], ["scene", ["park"]], ["#", ["2"]]]
function parseIdentifier(identifier) {
  return (identifier || "").split(" | ").filter(Boolean).map((segment) => {
    if (segment.startsWith("#")) return ["#", [segment.slice(1)]];
    const [slot, concepts] = segment.split(": ");
    return [slot, (concepts || "").split(", ").filter(Boolean)];
  });
}

// The identifier as concept chips; those of `matched` ("objects:dog") that the query's candidates support are highlighted.
function conceptChips(identifier, matched = new Set(), support = new Map()) {
  const chips = element("ul", { class: "chips", "aria-label": "identifier" });
  for (const [slot, concepts] of parseIdentifier(identifier)) {
    for (const concept of concepts) {
      const key = `${slot}:${concept}`;
      const hit = matched.has(key) && (support.get(key) || 0) >= SHOWN_PROBABILITY;
      const title = hit ? `${slot}: matched the query (${percent(support.get(key))} of the candidates' probability)` : slot;
      const chip = element("li", { class: `chip slot-${SLOT_NAMES.includes(slot) ? slot : "other"}${hit ? " matched" : ""}`,
                                   title, "data-concept": key });
      chip.append(element("span", { class: "slot", text: slot === "#" ? "#" : slot.slice(0, 3) }), " ", concept);
      if (hit) chip.append(element("span", { class: "visually-hidden", text: " (matched)" }));
      chips.append(chip);
    }
  }
  return chips;
}

function probabilities(candidates) {
  if (!candidates.length) return [];
  const top = Math.max(...candidates.map((c) => c.score));
  const weights = candidates.map((c) => Math.exp(c.score - top));
  const total = weights.reduce((sum, w) => sum + w, 0);
  return weights.map((w) => w / total);
}

// Each concept's share of the candidates' probability ("objects:dog" -> 0.93), as the searcher weighs its concept list.
function conceptSupport(candidates) {
  const support = new Map();
  probabilities(candidates).forEach((probability, i) => {
    for (const [slot, concepts] of parseIdentifier(candidates[i].identifier)) {
      for (const concept of concepts) support.set(`${slot}:${concept}`, (support.get(`${slot}:${concept}`) || 0) + probability);
    }
  });
  return support;
}

function percent(share) {
  return `${(100 * share).toFixed(share < 0.1 ? 1 : 0)}%`;
}

function thumbnailUrl(index, id) {
  return `thumb/${encodeURIComponent(index)}/${encodeURIComponent(id)}`;
}

function drawCandidates(ssi) {
  const list = $("candidate-list");
  const candidates = ssi.candidates || [];
  const items = probabilities(candidates).map((probability, i) => [probability, element("li", { class: "candidate" },
    element("span", { class: "probability", text: percent(probability), title: `log-probability ${candidates[i].score.toFixed(3)}` }),
    conceptChips(candidates[i].identifier))]);
  const folded = items.filter(([probability]) => probability < SHOWN_PROBABILITY).map(([, item]) => item);
  list.replaceChildren(...items.filter(([probability]) => probability >= SHOWN_PROBABILITY).map(([, item]) => item));
  if (folded.length) {
    list.append(element("li", { class: "more" }, element("details", {},
      element("summary", { text: `${folded.length} more, each under ${percent(SHOWN_PROBABILITY)}` }),
      element("ol", {}, ...folded))));
  }
  const empty = (ssi.empty_lists || []).length ? `Lists that found nothing: ${ssi.empty_lists.join(", ")}.` : "";
  $("candidates").hidden = !candidates.length && !empty;
  const note = $("candidates").querySelector(".note") || $("candidates").appendChild(element("p", { class: "note" }));
  note.textContent = [empty, ...(ssi.warnings || [])].join(" ");
  const reading = ssi.query_image;
  $("candidates-title").textContent = reading ? "The identifier read from the image" : "Identifiers generated for the query";
  $("query-image-reading").textContent = reading ? `Read from the image: ${reading.identifier}. ${reading.rationale}` : "";
}

function drawHit(index, hit, rank, support) {
  const source = hit._source || {};
  const explained = hit._ssi || {};
  const matched = new Set(explained.matched_concepts || []);
  const caption = source.caption || "";
  const image = element("img", { src: thumbnailUrl(hit._index || index, hit._id), alt: caption || hit._id,
                                 loading: "lazy", width: "256", height: "256" });
  image.addEventListener("error", () => { image.src = "assets/placeholder.svg"; }, { once: true });
  const shares = element("ul", { class: "shares" });
  for (const [list, share] of Object.entries(explained.shares || {})) {
    const part = hit._score ? share / hit._score : 0;
    const bar = element("span", { class: "bar" });
    bar.style.width = `${Math.max(2, 100 * part)}%`;
    shares.append(element("li", {}, element("span", { class: "list", text: list }), element("span", { class: "track" }, bar),
      element("span", { class: "value", text: `${percent(part)} · rank ${(explained.ranks || {})[list] ?? "-"}` })));
  }
  const why = element("details", { class: "why" },
    element("summary", { text: "Why this image" }),
    element("p", { text: `Score ${hit._score.toFixed(3)}; each list's share of it:` }),
    shares,
    element("p", { text: `Matched concepts: ${[...matched].join(", ") || "none"}` }));
  const rationale = source.ssi && source.ssi.rationale;
  return element("li", { class: "hit", "data-id": hit._id },
    element("figure", {}, image, element("figcaption", {},
      element("span", { class: "rank", text: `${rank}.` }), " ", caption || hit._id)),
    conceptChips(explained.identifier || (source.ssi && source.ssi.id), matched, support),
    rationale ? element("p", { class: "rationale", text: rationale }) : null,
    why);
}

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = false;
  $("hits").replaceChildren();
  $("candidates").hidden = true;
}

// The engine's error document ({"error": {"type", "reason", "root_cause"}, "status"}) as one line.
function engineError(status, body) {
  const error = body && body.error;
  if (error && typeof error === "object") {
    const cause = (error.root_cause || [])[0] || error;
    return `${status} ${cause.type || error.type}: ${cause.reason || error.reason}`;
  }
  return `${status}: ${typeof error === "string" ? error : "the endpoint answered without a search response"}`;
}

async function search() {
  const text = $("q").value.trim();
  if (!text && !state.image) return;
  const clause = { explain: true };
  if (text) clause.query = text;
  if (state.image) clause.image = state.image.dataUrl;
  const what = state.image ? `the image ${state.image.name}${text ? ` and “${text}”` : ""}` : `“${text}”`;
  $("status").textContent = `Searching for ${what} …`;
  $("error").hidden = true;
  document.body.setAttribute("aria-busy", "true");
  const started = performance.now();
  let response;
  let body;
  try {
    response = await fetch(`../${encodeURIComponent(state.index)}/_search`, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ query: { ssi: clause }, size: 24 }),
    });
    body = await response.json().catch(() => null);
  } catch (failure) {
    document.body.removeAttribute("aria-busy");
    $("status").textContent = "The search failed.";
    showError(`Cannot reach the search endpoint: ${failure.message}`);
    return;
  }
  const answered = performance.now();
  document.body.removeAttribute("aria-busy");
  if (!response.ok || !body || !body.hits) {
    $("status").textContent = "The search failed.";
    showError(engineError(response.status, body));
    return;
  }
  const ssi = body._ssi || {};
  drawCandidates(ssi);
  const support = conceptSupport(ssi.candidates || []);
  const hits = body.hits.hits;
  $("hits").replaceChildren(...hits.map((hit, i) => drawHit(state.index, hit, i + 1, support)));
  const total = body.hits.total ? body.hits.total.value : hits.length;
  $("status").textContent = `${hits.length} of ${total} images for ${what} in ${Math.round(answered - started)} ms `
    + `(search took ${body.took} ms).`;
  requestAnimationFrame(() => setTimeout(() => {  // after the frame that shows the hits
    document.body.dataset.renderMs = (performance.now() - answered).toFixed(1);
  }, 0));
}

function fromLocation() {
  const params = new URLSearchParams(location.search);
  const meta = document.querySelector('meta[name="ssi-default-index"]');
  state.index = params.get("index") || (meta && meta.content) || "";
  $("index-name").textContent = state.index ? `on ${state.index}` : "";
  $("q").value = params.get("q") || "";
  if (!state.index) {
    showError("No index to search: serve was started without --index and has no trained generator; add ?index=NAME.");
    return false;
  }
  return true;
}

function useImage(file) {
  if (!file) return;
  const reader = new FileReader();
  reader.addEventListener("load", () => {
    if (state.image) URL.revokeObjectURL(state.image.preview);
    state.image = { dataUrl: reader.result, name: file.name || "dropped image", preview: URL.createObjectURL(file) };
    $("query-image-preview").src = state.image.preview;
    $("query-image-name").textContent = `Searching with ${state.image.name}; the text, if any, is its caption.`;
    $("query-image").hidden = false;
    search();
  });
  reader.addEventListener("error", () => showError(`Cannot read ${file.name}: ${reader.error}`));
  reader.readAsDataURL(file);
}

function clearImage() {
  if (state.image) URL.revokeObjectURL(state.image.preview);
  state.image = null;
  $("image").value = "";
  $("query-image").hidden = true;
  $("query-image-reading").textContent = "";
  $("q").focus();
}

function start() {
  $("search").addEventListener("submit", (event) => {
    event.preventDefault();
    const params = new URLSearchParams(location.search);
    const text = $("q").value.trim();
    if (text) params.set("q", text); else params.delete("q");
    history.pushState(null, "", `?${params}`);
    search();
  });
  $("image").addEventListener("change", () => useImage($("image").files[0]));
  $("clear-image").addEventListener("click", clearImage);
  const overlay = $("drop-overlay");
  document.addEventListener("dragover", (event) => { event.preventDefault(); overlay.hidden = false; });
  document.addEventListener("dragleave", (event) => { if (!event.relatedTarget) overlay.hidden = true; });
  document.addEventListener("drop", (event) => {
    event.preventDefault();
    overlay.hidden = true;
    useImage(event.dataTransfer.files[0]);
  });
  window.addEventListener("popstate", () => { if (fromLocation()) search(); });
  // autofocus alone is applied at a later rendering update, after the page has loaded: type at once instead
  $("q").focus();
  if (fromLocation() && $("q").value) search();
}

start();
