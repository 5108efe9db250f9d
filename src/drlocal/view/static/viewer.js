// drlocal viewer page. Keeps DRfC's URL contract (/?robo=all&camera=kvs_stream&quality=75&width=480, streams at
// /<worker>/stream?topic=<ROS topic>&quality=&width=&height=) but updates in place instead of reloading the page.
// Everything from the server is written with textContent, never parsed as HTML.
"use strict";

(() => {
    // DRfC's page shows at most 6 cameras; browsers also keep at most 6 HTTP/1.1 connections per host, and the
    // server refuses a 7th stream.
    const MAX_STREAMS = 6;
    const CAMERAS = [
        { id: "kvs_stream", topic: "/racecar/deepracer/kvs_stream" },
        { id: "camera", topic: "/racecar/camera/zed/rgb/image_rect_color" },
        { id: "main_camera", topic: "/racecar/main_camera/zed/rgb/image_rect_color" },
        { id: "sub_camera", topic: "/sub_camera/zed/rgb/image_rect_color" },
    ];
    const CAMERA_IDS = CAMERAS.map((c) => c.id);
    // Setting an <img> to this closes its MJPEG connection without an error event on most browsers.
    const BLANK = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7";
    // Time for closed streams to be noticed by the server before new ones are opened (DRfC waited 300 ms too).
    const SWITCH_DELAY_MS = 300;
    const POLL_MS = 1000;
    // The header JSON is fetched without credentials: Chromium and Firefox then use a separate connection pool, so the
    // 1 s poll still gets through while six MJPEG streams hold the six connections of the normal pool.
    const FETCH_OPTS = { cache: "no-store", credentials: "omit" };

    const $ = (id) => document.getElementById(id);
    const roboSelect = $("robo-select");
    const cameraSelect = $("camera-select");
    const qualityInput = $("camera-quality");
    const widthInput = $("width-size");
    const main = $("main-container");

    let robots = null; // worker ids from /status.json; null until the first answer
    let replayOpen = false; // a replay takes one of the six stream slots
    let gridKey = ""; // which streams the grid shows now
    let generation = 0; // bumps on every grid change, so a late timer never revives a closed stream

    function clampInt(value, lo, hi, fallback) {
        if (value === null || value === undefined || String(value).trim() === "") return fallback;
        const n = Math.round(Number(value));
        return Number.isFinite(n) ? Math.min(hi, Math.max(lo, n)) : fallback;
    }

    const state = (() => {
        const p = new URLSearchParams(location.search);
        return {
            robo: p.get("robo") || "all",
            camera: p.get("camera") || "kvs_stream",
            quality: clampInt(p.get("quality"), 1, 100, 75),
            width: clampInt(p.get("width"), 160, 1920, 480),
        };
    })();

    function normalizeState() {
        if (state.camera !== "all" && !CAMERA_IDS.includes(state.camera)) state.camera = "kvs_stream";
        // DRfC refuses "all workers x all cameras": it would be 4 streams per worker.
        if (state.robo === "all" && state.camera === "all") state.camera = "kvs_stream";
        if (robots && robots.length && state.robo !== "all" && !robots.includes(state.robo)) state.robo = "all";
    }

    function writeUrl() {
        const p = new URLSearchParams();
        p.set("robo", state.robo);
        p.set("camera", state.camera);
        p.set("quality", state.quality);
        p.set("width", state.width);
        history.replaceState(null, "", location.pathname + "?" + p.toString());
    }

    function syncForm() {
        roboSelect.value = state.robo;
        cameraSelect.value = state.camera;
        qualityInput.value = state.quality;
        widthInput.value = state.width;
        cameraSelect.querySelector(".all-select").classList.toggle("hide", state.robo === "all");
    }

    function option(value, text) {
        const o = document.createElement("option");
        o.value = value;
        o.textContent = text;
        return o;
    }

    function fillRobotSelect() {
        roboSelect.replaceChildren(option("all", "All"), ...robots.map((r) => option(r, r)));
        roboSelect.firstChild.classList.add("all-select");
    }

    function height() {
        return Math.round((state.width * 3) / 4);
    }

    function streamUrl(robo, topic) {
        return "/" + encodeURIComponent(robo) + "/stream?topic=" + topic + "&quality=" + state.quality +
            "&width=" + state.width + "&height=" + height();
    }

    // ------------------------------------------------------------------ stream images

    function closeImage(img) {
        img.onerror = null;
        img.onload = null;
        delete img.dataset.url;
        img.src = BLANK;
    }

    function openImage(img, url, gen) {
        let tries = 0;
        img.dataset.url = url;
        img.onload = () => {
            tries = 0;
            img.classList.remove("failed");
        };
        img.onerror = () => {
            // A refused (429) or broken stream: mark it red like DRfC and try again, slower each time.
            if (img.dataset.url !== url || gen !== generation) return;
            img.classList.add("failed");
            tries += 1;
            const delay = Math.min(10000, 1000 * tries);
            setTimeout(() => {
                if (img.dataset.url === url && gen === generation) img.src = url + "&retry=" + tries;
            }, delay);
        };
        img.src = url;
    }

    function wantedStreams() {
        const rs = state.robo === "all" ? robots : robots.filter((r) => r === state.robo);
        const cams = CAMERAS.filter((c) => state.camera === "all" || c.id === state.camera);
        const list = [];
        rs.forEach((robo) => cams.forEach((cam) => list.push({ robo, cam })));
        return list;
    }

    function maxAlert(cap) {
        const div = document.createElement("div");
        div.classList.add("max-cameras-reached-alert");
        div.textContent = "Maximum amount of " + MAX_STREAMS + " cameras reached" +
            (cap < MAX_STREAMS ? " (the replay uses one)" : "");
        const dismiss = document.createElement("button");
        dismiss.classList.add("dismiss-button");
        dismiss.textContent = "Dismiss";
        dismiss.addEventListener("click", () => div.remove());
        div.appendChild(dismiss);
        return div;
    }

    // Rebuild the grid when what it shows changed; only retarget the images when just quality/width changed.
    // Returns true when streams were closed (the caller then waits before opening others).
    function renderGrid() {
        if (robots === null) return false;
        if (!robots.length) {
            main.querySelectorAll("img.card-img").forEach(closeImage);
            main.replaceChildren(Object.assign(document.createElement("p"), {
                className: "note", textContent: "Waiting for the run to report its workers…",
            }));
            gridKey = "";
            return false;
        }
        const cap = MAX_STREAMS - (replayOpen ? 1 : 0);
        const all = wantedStreams();
        const shown = all.slice(0, cap);
        const key = JSON.stringify([shown.map((s) => [s.robo, s.cam.id]), all.length > cap, cap]);
        const images = Array.from(main.querySelectorAll("img.card-img"));
        const hadStreams = images.some((img) => img.dataset.url);
        generation += 1;
        const gen = generation;
        images.forEach(closeImage);

        if (key !== gridKey) {
            gridKey = key;
            main.replaceChildren();
            const groups = new Map();
            shown.forEach(({ robo, cam }) => {
                if (!groups.has(robo)) {
                    const box = document.createElement("div");
                    box.classList.add("robo-maker");
                    box.dataset.robo = robo;
                    const title = document.createElement("h2");
                    title.textContent = "Worker: " + robo;
                    const group = document.createElement("div");
                    group.classList.add("robo-camera-group");
                    group.dataset.robo = robo;
                    box.append(title, group);
                    main.appendChild(box);
                    groups.set(robo, group);
                }
                const card = document.createElement("div");
                card.classList.add("card");
                card.dataset.camera = cam.id;
                card.dataset.robo = robo;
                const title = document.createElement("h3");
                title.textContent = cam.id;
                const img = document.createElement("img");
                img.classList.add("card-img");
                img.dataset.camera = cam.id;
                img.dataset.robo = robo;
                img.dataset.topic = cam.topic;
                img.alt = robo + "-" + cam.id;
                card.append(title, img);
                groups.get(robo).appendChild(card);
            });
            if (all.length > cap) main.appendChild(maxAlert(cap));
        }
        const open = () => {
            if (gen !== generation) return;
            main.querySelectorAll("img.card-img").forEach((img) => {
                img.style.width = state.width + "px";
                openImage(img, streamUrl(img.dataset.robo, img.dataset.topic), gen);
            });
        };
        if (hadStreams) setTimeout(open, SWITCH_DELAY_MS);
        else open();
        return hadStreams;
    }

    function onFormChange() {
        state.robo = roboSelect.value;
        state.camera = cameraSelect.value;
        state.quality = clampInt(qualityInput.value, 1, 100, 75);
        state.width = clampInt(widthInput.value, 160, 1920, 480);
        normalizeState();
        syncForm();
        writeUrl();
        renderGrid();
    }

    // ------------------------------------------------------------------ run header

    function text(id, value) {
        const el = $(id);
        const s = value === null || value === undefined || value === "" ? "–" : String(value);
        if (el.textContent !== s) el.textContent = s;
    }

    function formatNumber(v, digits) {
        if (typeof v !== "number" || !Number.isFinite(v)) return v;
        return v.toLocaleString("en-US", { maximumFractionDigits: digits });
    }

    function formatElapsed(s) {
        if (typeof s !== "number" || !Number.isFinite(s) || s < 0) return null;
        s = Math.floor(s);
        const h = Math.floor(s / 3600);
        const m = Math.floor((s % 3600) / 60);
        const sec = s % 60;
        return h + ":" + String(m).padStart(2, "0") + ":" + String(sec).padStart(2, "0");
    }

    function renderShares(shares) {
        const bar = $("hdr-share-bar");
        const entries = shares && typeof shares === "object" ?
            Object.entries(shares).filter(([, v]) => typeof v === "number" && Number.isFinite(v) && v > 0) : [];
        const total = entries.reduce((a, [, v]) => a + v, 0);
        if (!entries.length || total <= 0) {
            bar.replaceChildren();
            text("hdr-shares", null);
            return;
        }
        const norm = Math.max(1, total); // fractions are shares of wall time: leave the rest empty when they sum < 1
        bar.replaceChildren(...entries.map(([name, v], i) => {
            const seg = document.createElement("span");
            seg.className = "share-" + (i % 5);
            seg.style.width = ((100 * v) / norm).toFixed(1) + "%";
            seg.title = name + " " + Math.round(100 * v) + " %";
            return seg;
        }));
        text("hdr-shares", entries.map(([name, v]) => name + " " + Math.round(100 * v) + " %").join(" · "));
    }

    function renderHeader(h) {
        const title = h.title ? String(h.title) : "drlocal";
        text("run-title", title);
        const docTitle = title + " – drlocal viewer";
        if (document.title !== docTitle) document.title = docTitle;
        const phase = $("hdr-phase");
        text("hdr-phase", h.phase);
        phase.className = "v phase " + String(h.phase || "").toLowerCase().replace(/[^a-z]/g, "");
        text("hdr-iteration", formatNumber(h.iteration, 0));
        text("hdr-episodes", formatNumber(h.episodes, 0));
        text("hdr-checkpoint", h.checkpoint);
        text("hdr-best", h.best_checkpoint);
        text("hdr-steps", formatNumber(h.steps_per_s, h.steps_per_s >= 100 ? 0 : 1));
        renderShares(h.shares);
        text("hdr-elapsed", formatElapsed(h.elapsed_s));
        const it = $("replay-iteration");
        if (typeof h.iteration === "number") it.placeholder = String(h.iteration);
    }

    function setConnection(ok, streams) {
        const el = $("hdr-conn");
        el.className = "v small " + (ok ? "conn-ok" : "conn-bad");
        text("hdr-conn", ok ? "● live" + (streams ? " · streams " + streams.active + "/" + streams.max : "") :
            "● not answering");
    }

    async function poll() {
        try {
            const r = await fetch("/status.json", FETCH_OPTS);
            if (!r.ok) throw new Error("HTTP " + r.status);
            const s = await r.json();
            renderHeader(s.header || {});
            setConnection(true, s.streams);
            const rs = (s.robots || []).map(String);
            if (robots === null || rs.join("\n") !== robots.join("\n")) {
                robots = rs;
                fillRobotSelect();
                normalizeState();
                syncForm();
                writeUrl();
                renderGrid();
            }
        } catch (e) {
            setConnection(false);
        } finally {
            setTimeout(poll, POLL_MS);
        }
    }

    // ------------------------------------------------------------------ replay

    const replayImg = $("replay-img");
    const replayError = $("replay-error");
    const replayCard = $("replay-card");
    const replayClose = $("replay-close");

    function closeReplay() {
        closeImage(replayImg);
        replayCard.classList.add("hide");
        replayClose.disabled = true;
        if (replayOpen) {
            replayOpen = false;
            renderGrid();
        }
    }

    async function playReplay(ev) {
        ev.preventDefault();
        const iteration = $("replay-iteration").value.trim();
        const episode = $("replay-episode").value.trim();
        const camera = $("replay-camera").value;
        const ghost = $("replay-ghost").checked;
        const q = new URLSearchParams({ iteration, episode, camera, ghost: ghost ? "1" : "0" });
        replayError.textContent = "Checking…";
        try {
            const r = await fetch("/replay/check?" + q.toString(), FETCH_OPTS);
            const body = await r.json().catch(() => ({}));
            if (!r.ok) {
                replayError.textContent = body.error || "The replay was refused (HTTP " + r.status + ")";
                return;
            }
        } catch (e) {
            replayError.textContent = "The viewer did not answer: " + e.message;
            return;
        }
        replayError.textContent = "";
        closeImage(replayImg);
        let freed = false;
        if (!replayOpen) {
            replayOpen = true;
            freed = renderGrid(); // gives up one live stream if the grid used all six
        }
        q.set("quality", state.quality);
        q.set("width", state.width);
        q.set("height", height());
        q.set("t", Date.now()); // a new URL each time, so "Play" again restarts the replay
        const url = "/replay/stream?" + q.toString();
        $("replay-title").textContent = "Iteration " + iteration + " · episode " + episode + " · " + camera +
            (ghost ? " · ghost" : "");
        replayCard.classList.remove("hide");
        replayClose.disabled = false;
        replayImg.style.width = state.width + "px";
        setTimeout(() => {
            replayImg.dataset.url = url;
            replayImg.onerror = () => {
                if (replayImg.dataset.url !== url) return;
                replayImg.classList.add("failed");
                replayError.textContent = "The replay stream could not be opened (at most " + MAX_STREAMS +
                    " streams at once).";
            };
            replayImg.onload = () => replayImg.classList.remove("failed");
            replayImg.src = url;
        }, freed ? SWITCH_DELAY_MS : 0);
    }

    // ------------------------------------------------------------------ start

    CAMERAS.forEach((c) => {
        cameraSelect.appendChild(option(c.id, c.id));
        $("replay-camera").appendChild(option(c.id, c.id));
    });
    // Before the workers are known, keep a bookmarked worker selectable so the form shows the URL's state.
    if (state.robo !== "all") roboSelect.appendChild(option(state.robo, state.robo));
    normalizeState();
    syncForm();
    writeUrl();
    [roboSelect, cameraSelect, qualityInput, widthInput].forEach((el) => el.addEventListener("change", onFormChange));
    $("replay-form").addEventListener("submit", playReplay);
    replayClose.addEventListener("click", closeReplay);
    poll();
})();
