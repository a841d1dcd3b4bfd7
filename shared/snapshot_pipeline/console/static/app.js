// The console's pages: the uploads under the prefix (searchable, paged by the server) and one video's
// page (gallery, sprite sheets with their grid, the player with storyboard previews, the index).
// Everything comes from the console's own /api/; pictures and the video are short-lived signed URLs.
"use strict";

const SETTLED = new Set(["indexed", "failed", "deleted"]);
const POLL_MS = 1500;
const main = document.getElementById("main");

// el("a", {href: "/"}, "text", child...): an element; text is always text, never markup.
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

async function api(path, options) {
  const response = await fetch("/api/" + path, options);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function say(text) { document.getElementById("status").textContent = text; }

function clock(seconds) {
  if (seconds === null || seconds === undefined) return "time unknown";
  const m = Math.floor(seconds / 60), s = seconds - 60 * m;
  return `${m}:${s.toFixed(3).padStart(6, "0")}`;
}

function stateBadge(doc) {
  return el("span", {class: `state ${doc.state}`}, doc.code ? `${doc.state} (${doc.code})` : doc.state);
}

function videoHref(key) { return "/video?key=" + encodeURIComponent(key); }

// --- the uploads ------------------------------------------------------------------------------------
async function uploadsPage() {
  const about = await api("about");
  document.getElementById("where").textContent = `oss://${about.bucket}/${about.prefix}`;
  const params = new URLSearchParams(location.search);
  const query = params.get("q") || "";
  const gone = params.get("gone") === "1";  // the videos that left the bucket, from their index folders
  const trail = (params.get("trail") || "").split("\n").filter(Boolean);  // the pages before this one
  const after = trail.length ? trail[trail.length - 1] : "";
  const page = await api(`${gone ? "gone" : "uploads"}?${new URLSearchParams({q: query, after})}`);
  const address = (changes) => "/?" + new URLSearchParams({q: query, ...(gone ? {gone: "1"} : {}), ...changes});
  const search = el("form", {class: "bar", role: "search", action: "/"},
    el("label", {for: "q"}, `Key starts with ${about.prefix}`),
    el("input", {id: "q", name: "q", type: "search", value: query, placeholder: "e.g. 2026/"}),
    gone ? el("input", {type: "hidden", name: "gone", value: "1"}) : null,
    el("button", {type: "submit"}, "Search"));
  const views = el("nav", {class: "bar", "aria-label": "Which videos"},
    gone ? el("a", {href: "/?" + new URLSearchParams({q: query})}, "In the bucket") : el("strong", {}, "In the bucket"),
    gone ? el("strong", {}, "Deleted") : el("a", {href: address({gone: "1"})}, "Deleted"));
  const rows = page.items.map((item) => el("tr", {},
    el("td", {class: "key"}, el("a", {href: videoHref(item.key)}, item.key)),
    el("td", {}, stateBadge(item)),
    el("td", {class: "optional"}, item.reason || ""),
    el("td", {class: "optional"}, item.last_modified || "")));
  const table = el("table", {"aria-label": gone ? "Deleted videos" : "Uploads"},
    el("thead", {}, el("tr", {}, el("th", {}, "Video"), el("th", {}, "State"),
      el("th", {class: "optional"}, "Why"), el("th", {class: "optional"}, "Uploaded"))),
    el("tbody", {}, rows.length ? rows : el("tr", {}, el("td", {colspan: 4}, "No videos here."))));
  const pager = el("nav", {class: "pager", "aria-label": "Pages"},
    trail.length ? el("a", {href: address({trail: trail.slice(0, -1).join("\n")})}, "← Previous page") : null,
    page.next ? el("a", {href: address({trail: [...trail, page.next].join("\n")})}, "Next page →") : null);
  main.replaceChildren(el("h1", {}, gone ? "Deleted videos" : "Uploads"),
                       about.allow_upload && !gone ? uploadBox(about) : null, views, search, table, pager);
  if (page.items.some((item) => item.state === "pending")) setTimeout(refreshUploads, 3 * POLL_MS);
}

function refreshUploads() {
  if (!document.activeElement || document.activeElement === document.body) pollAgain(uploadsPage, 0);
  else setTimeout(refreshUploads, 3 * POLL_MS);  // never pull the page away from someone typing
}

function uploadBox(about) {
  const input = el("input", {id: "video-file", type: "file", accept: "video/*", required: true});
  const progress = el("span", {class: "muted", id: "upload-progress"});
  const form = el("form", {class: "upload bar", "aria-label": "Upload a video"},
    el("label", {for: "video-file"}, `Upload a video to oss://${about.bucket}/${about.prefix}`), input,
    el("button", {type: "submit"}, "Upload"), progress);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = input.files[0];
    if (!file) return;
    progress.textContent = `uploading ${file.name}…`;
    try {
      const done = await api("upload?" + new URLSearchParams({name: file.name}), {method: "POST", body: file});
      location.assign(videoHref(done.key));
    } catch (error) {
      progress.textContent = `upload failed: ${error.message}`;
    }
  });
  return form;
}

// --- one video --------------------------------------------------------------------------------------
let shownVideo = null;  // what the page draws now: redrawn only when the state or the results change

async function videoPage() {
  const key = new URLSearchParams(location.search).get("key") || "";
  const video = await api("video?" + new URLSearchParams({key}));
  const shape = JSON.stringify([video.state, video.results.map((r) => [r.profile, r.job.id, r.job.status])]);
  if (shape !== shownVideo) {
    shownVideo = shape;
    drawVideo(video);
    say(`${key}: ${video.state}`);
  }
  if (!SETTLED.has(video.state)) pollAgain(videoPage, POLL_MS);
}

// A refresh that fails (the console or OSS briefly unreachable while a job runs) keeps the page as it
// is, says so, and tries again later: one lost answer must not stop the live view for good.
function pollAgain(page, delay) {
  setTimeout(() => page().catch((error) => {
    say(`could not refresh (${error.message}); trying again`);
    pollAgain(page, 3 * POLL_MS);
  }), delay);
}

function drawVideo(video) {
  document.getElementById("where").textContent = `oss://${video.bucket}/${video.key}`;
  document.title = `${video.key} · Snapshots console`;
  const board = video.results.find((r) => r.storyboard_vtt);
  const player = video.video_url ? el("section", {class: "player", "aria-label": "Player"},
    el("video", {id: "player", controls: true, preload: "metadata", playsinline: true, crossorigin: null},
      el("source", {src: video.video_url}))) : null;
  main.replaceChildren(
    el("h1", {}, video.key),
    el("p", {}, stateBadge(video), " ", video.reason || ""),
    player,
    ...video.results.map(resultSection),
    historySection(video),
    el("details", {}, el("summary", {}, `index.json (${video.index_key})`),
      el("pre", {}, JSON.stringify(video.index, null, 2))));
  if (player) startPlayer(board ? board.storyboard_vtt : null);
}

function startPlayer(storyboardVtt) {
  const options = {iconUrl: "/static/plyr/plyr.svg", blankVideo: "", invertTime: false};
  if (storyboardVtt) options.previewThumbnails = {enabled: true, src: storyboardVtt};
  window.consolePlayer = new Plyr("#player", options);
}

function resultSection(result) {
  const job = result.job || {};
  const heading = `Profile ${result.profile}: ${job.type || "no"} job ${job.id || ""} ${job.status || ""}`;
  const error = job.error ? el("p", {}, `Failed: ${job.error.code}: ${job.error.message}`) : null;
  const stills = result.stills.length ? el("ul", {class: "gallery", "aria-label": `Stills of ${result.profile}`},
    result.stills.map((still) => el("li", {}, el("figure", {},
      el("a", {href: still.url}, el("img", {src: still.url, alt: `Still ${still.index} at ${clock(still.time)}`,
                                            loading: "lazy"})),
      el("figcaption", {}, `#${still.index} · ${clock(still.time)}`))))) : null;
  const sheets = result.sheets.length ? el("div", {"aria-label": `Sprite sheets of ${result.profile}`},
    result.sheets.map((sheet) => spriteSheet(sheet, result.sprite))) : null;
  return el("section", {"aria-label": `Profile ${result.profile}`}, el("h2", {}, heading), error, stills, sheets);
}

// A sprite sheet with its tile grid drawn over it, each box placed in percent of the sheet's size.
function spriteSheet(sheet, sprite) {
  const tiles = (sprite.tiles || []).filter((t) => t.sprite === sheet.index);
  const times = tiles.map((t) => clock(t.time)).join(", ");
  const img = el("img", {src: sheet.url, alt: `Sprite sheet ${sheet.index}: ${tiles.length} tiles at ${times}`});
  const box = el("figure", {class: "sheet"}, img);
  img.addEventListener("load", () => {
    for (const t of tiles) {
      box.append(el("span", {class: "tile", "aria-hidden": "true", title: clock(t.time),
        style: `left:${100 * t.x / img.naturalWidth}%;top:${100 * t.y / img.naturalHeight}%;` +
               `width:${100 * t.w / img.naturalWidth}%;height:${100 * t.h / img.naturalHeight}%`},
        clock(t.time)));
    }
  });
  return box;
}

function historySection(video) {
  const attempts = video.attempts.map((a) => el("tr", {},
    el("td", {}, a.attempt), el("td", {}, a.state || ""), el("td", {}, a.job_id || ""),
    el("td", {class: "optional"}, a.claimed_at || ""),
    el("td", {class: "optional"}, a.error ? `${a.error.code}: ${a.error.message}` : "")));
  return el("section", {"aria-label": "History"}, el("h2", {}, "History"),
    el("p", {}, `Versions in the output folder (newest first): ${video.versions.join(", ") || "none"}`),
    el("table", {"aria-label": "Attempts of this version"},
      el("thead", {}, el("tr", {}, el("th", {}, "Attempt"), el("th", {}, "Claim"), el("th", {}, "Job"),
        el("th", {class: "optional"}, "Claimed"), el("th", {class: "optional"}, "Error"))),
      el("tbody", {}, attempts.length ? attempts : el("tr", {}, el("td", {colspan: 5}, "No attempts recorded.")))));
}

function showError(error) {
  main.replaceChildren(el("h1", {}, "Something went wrong"), el("p", {role: "alert"}, error.message));
}

(location.pathname === "/video" ? videoPage() : uploadsPage()).catch(showError);
