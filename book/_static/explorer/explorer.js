/* The latent explorer of book/explorer.md: decoders exported by aecourse.export, run in the reader's browser by
 * onnxruntime-web (single-threaded WebAssembly, so no cross-origin isolation is needed), offline.
 *
 * Each <div class="ae-explorer" data-explorer="ID"> becomes the explorer of that id in models/manifest.json:
 * kind "map" (a point dragged over a 2-D latent plane) or "sliders" (one slider per chosen dimension, with a
 * switch between sibling models, e.g. one per beta). Tests read window.aecourseExplorer (see the end).
 *
 * Dimensions are numbered from 0, as in the chapters (chapter 3's table of dimensions, chapter 5's traversal rows,
 * torch's z[:, j]): the slider labelled z_4 moves z[4]. Only dimName, dimText and drawDimName name a dimension.
 */
(function () {
  "use strict";

  const BASE = new URL(".", document.currentScript.src).href; // .../_static/explorer/
  const SIDE = 28;
  const CLASS_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]; // matplotlib's tab10, as in the chapters' scatters

  const explorers = {};
  let resolveReady, rejectReady;
  const ready = new Promise((resolve, reject) => { resolveReady = resolve; rejectReady = reject; });
  ready.catch(() => {}); // failures are shown on the page; tests read them from `failure`

  /* A latent dimension's name, counted from 0 like the chapters: "z" with the index as a subscript. */
  function dimName(j) {
    return el("span", { class: "ae-dim-name" }, [document.createTextNode("z"), el("sub", { text: String(j) })]);
  }

  /* The same name where no markup can go (labels for assistive technology; the 2-D map's canvas). */
  function dimText(j) {
    return "z" + j;
  }

  /* "z" and its subscript index drawn on a canvas at (x, y), baseline y; returns the x after it. */
  function drawDimName(context, j, x, y, size) {
    context.font = size + "px sans-serif";
    context.fillText("z", x, y);
    x += context.measureText("z").width;
    context.font = Math.round(size * 0.75) + "px sans-serif";
    context.fillText(String(j), x, y + Math.round(size * 0.25));
    x += context.measureText(String(j)).width;
    context.font = size + "px sans-serif";
    return x;
  }

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "text") node.textContent = value;
      else node.setAttribute(key, value);
    }
    for (const child of children || []) node.appendChild(child);
    return node;
  }

  /* The page's address on a local web server: the same path below the book's root folder. */
  function servedUrl() {
    const root = new URL("../../", BASE).href; // _static/explorer/ -> the book's root
    const page = location.href.startsWith(root) ? location.href.slice(root.length) : "book/explorer.html";
    return "http://localhost:8000/" + page.split("#")[0];
  }

  function showMessage(root, title, detail) {
    root.replaceChildren(el("div", { class: "ae-message", role: "alert" }, [
      el("p", {}, [el("strong", { text: title })]),
      el("p", { text: detail }),
      el("p", { text: "From the folder that holds _build/, serve the book and open this page there:" }),
      el("pre", { text: "python -m http.server -d _build/html\n# then open " + servedUrl() }),
    ]));
  }

  function loadScript(src) {
    return new Promise((resolve, reject) => {
      const script = el("script", { src });
      script.onload = resolve;
      script.onerror = () => reject(new Error("could not load " + src));
      document.head.appendChild(script);
    });
  }

  async function startRuntime() {
    await loadScript(BASE + "ort/ort.wasm.min.js");
    ort.env.wasm.numThreads = 1; // no SharedArrayBuffer, so no cross-origin isolation headers needed
    ort.env.wasm.proxy = false;
    ort.env.wasm.wasmPaths = BASE + "ort/";
    ort.env.logLevel = "error";
    const response = await fetch(BASE + "models/manifest.json");
    if (!response.ok) throw new Error("models/manifest.json: HTTP " + response.status);
    return response.json();
  }

  /* One ONNX decoder: z (latent_dim floats) -> 784 grey levels in [0, 1]. */
  const sessions = {};
  function session(model) {
    if (!sessions[model.name]) {
      sessions[model.name] = ort.InferenceSession.create(BASE + "models/" + model.decoder,
        { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
    }
    return sessions[model.name];
  }

  async function decode(model, z) {
    const input = new ort.Tensor("float32", Float32Array.from(z), [1, model.latent_dim]);
    const output = await (await session(model)).run({ z: input });
    return output.x_hat.data;
  }

  function drawGrey(canvas, values, scale) {
    const context = canvas.getContext("2d");
    const image = context.createImageData(SIDE, SIDE);
    for (let i = 0; i < SIDE * SIDE; i++) {
      const v = Math.round(values[i] * scale);
      image.data[4 * i] = image.data[4 * i + 1] = image.data[4 * i + 2] = v;
      image.data[4 * i + 3] = 255;
    }
    context.putImageData(image, 0, 0);
  }

  function imageCanvas(cls) {
    return el("canvas", { class: cls, width: SIDE, height: SIDE });
  }

  /* What both kinds share: the current code z, the decoded image, the start images, the timings. */
  class Explorer {
    constructor(root, spec, manifest) {
      this.root = root;
      this.spec = spec;
      this.model = spec.models[0];
      this.z = Float32Array.from(this.model.start);
      this.example = null; // index of the start image in use, kept across a model switch
      this.timings = []; // ms from a move to its image drawn (decode + draw)
      this.draws = 0;
      this.pendingSince = null;
      this.busy = false;
      this.output = imageCanvas("ae-output");
      this.readout = el("div", { class: "ae-readout" });
      this.controls = el("div", { class: "ae-controls" });
      this.examples = el("div", { class: "ae-examples" });
      root.replaceChildren(
        el("div", { class: "ae-body" }, [
          this.controls,
          el("div", { class: "ae-result" }, [this.output, this.readout]),
        ]),
        el("div", { class: "ae-start" }, [el("span", { text: "Start from a test image:" }), this.examples]),
        el("p", { class: "ae-source", text: manifest.source }),
      );
    }

    buildExamples() {
      const buttons = this.model.examples.map((example, i) => {
        const thumb = imageCanvas("ae-thumb");
        drawGrey(thumb, example.pixels, 1);
        const button = el("button", { type: "button", title: example.name, "aria-label": "Start from: " + example.name },
          [thumb, el("span", { text: example.name })]);
        button.addEventListener("click", () => this.startFrom(i));
        return button;
      });
      const prior = el("button", { type: "button", class: "ae-prior", title: "z = 0, the prior's mean" },
        [el("span", { text: "z = 0" })]);
      prior.addEventListener("click", () => this.startFrom(null));
      this.examples.replaceChildren(...buttons, prior);
      this.examples.querySelectorAll("button").forEach((b, i) =>
        b.classList.toggle("ae-selected", i === (this.example === null ? buttons.length : this.example)));
    }

    startFrom(index) {
      this.example = index;
      this.z = Float32Array.from(index === null ? this.model.start : this.model.examples[index].mu);
      this.buildExamples();
      this.syncControls();
      this.request();
    }

    /* Ask for the image of the current z; moves that arrive during a decode are folded into the next one. */
    request() {
      if (this.pendingSince === null) this.pendingSince = performance.now();
      if (!this.busy) this.render();
    }

    async render() {
      this.busy = true;
      try {
        while (this.pendingSince !== null) {
          const since = this.pendingSince;
          this.pendingSince = null;
          const z = Float32Array.from(this.z);
          const pixels = await decode(this.model, z);
          drawGrey(this.output, pixels, 255);
          this.timings.push(performance.now() - since);
          this.draws += 1;
          this.drawnZ = z;
          this.readout.textContent = "z = (" + Array.from(z, (v) => v.toFixed(2)).join(", ") + ")";
        }
      } catch (error) {
        this.fail(error);
      } finally {
        this.busy = false;
      }
    }

    fail(error) {
      this.failure = String(error);
      showMessage(this.root, "The decoder failed.", String(error) + ".");
    }
  }

  /* A point dragged over the 2-D latent plane, over the test images' codes coloured by class. */
  class MapExplorer extends Explorer {
    constructor(root, spec, manifest) {
      super(root, spec, manifest);
      this.size = 320;
      this.map = el("canvas", { class: "ae-map", tabindex: "0",
        "aria-label": "latent point (" + dimText(0) + ", " + dimText(1) + "): drag it, or use the arrow keys" });
      const ratio = window.devicePixelRatio || 1;
      this.map.width = this.map.height = Math.round(this.size * ratio);
      this.map.style.width = this.map.style.height = this.size + "px";
      this.background = this.drawBackground();
      const legend = el("div", { class: "ae-legend" }, manifest.class_names.map((name, c) =>
        el("span", {}, [el("i", { style: "background:" + CLASS_COLORS[c % 10] }), document.createTextNode(name)])));
      this.controls.replaceChildren(this.map, legend);
      this.listen();
      this.buildExamples();
      this.syncControls();
      this.request();
    }

    /* Latent coordinates <-> CSS pixels of the map: z_0 to the right, z_1 upwards. */
    toPixels(z0, z1) {
      const [[x0, x1], [y0, y1]] = this.model.ranges;
      return [(z0 - x0) / (x1 - x0) * this.size, (y1 - z1) / (y1 - y0) * this.size];
    }

    toLatent(px, py) {
      const [[x0, x1], [y0, y1]] = this.model.ranges;
      const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
      return [clamp(x0 + px / this.size * (x1 - x0), x0, x1), clamp(y1 - py / this.size * (y1 - y0), y0, y1)];
    }

    drawBackground() {
      const canvas = el("canvas");
      canvas.width = canvas.height = this.map.width;
      const context = canvas.getContext("2d");
      const scale = this.map.width / this.size;
      context.scale(scale, scale);
      context.fillStyle = "#ffffff";
      context.fillRect(0, 0, this.size, this.size);
      context.strokeStyle = "#dddddd";
      const [cx, cy] = this.toPixels(0, 0);
      context.beginPath();
      context.moveTo(cx, 0); context.lineTo(cx, this.size);
      context.moveTo(0, cy); context.lineTo(this.size, cy);
      context.stroke();
      context.globalAlpha = 0.5;
      for (const [z0, z1, label] of this.model.points || []) {
        const [x, y] = this.toPixels(z0, z1);
        context.fillStyle = CLASS_COLORS[label % 10];
        context.fillRect(x - 1, y - 1, 2.5, 2.5);
      }
      context.globalAlpha = 1;
      context.fillStyle = "#555555";
      const [[x0, x1], [y0, y1]] = this.model.ranges;
      context.fillText(" (→): " + x0 + " … " + x1, drawDimName(context, 0, 4, this.size - 7, 11), this.size - 7);
      context.fillText(" (↑): " + y0 + " … " + y1, drawDimName(context, 1, 4, 12, 11), 12);
      return canvas;
    }

    syncControls() {
      const context = this.map.getContext("2d");
      context.setTransform(1, 0, 0, 1, 0, 0);
      context.drawImage(this.background, 0, 0);
      const scale = this.map.width / this.size;
      context.scale(scale, scale);
      const [x, y] = this.toPixels(this.z[0], this.z[1]);
      context.lineWidth = 2;
      context.strokeStyle = "#000000";
      context.fillStyle = "rgba(255, 255, 255, 0.85)";
      context.beginPath();
      context.arc(x, y, 7, 0, 2 * Math.PI);
      context.fill();
      context.stroke();
      context.beginPath();
      context.arc(x, y, 2, 0, 2 * Math.PI);
      context.fillStyle = "#000000";
      context.fill();
    }

    moveTo(z0, z1) {
      this.z[0] = z0;
      this.z[1] = z1;
      this.syncControls();
      this.request();
    }

    listen() {
      const at = (event) => {
        const box = this.map.getBoundingClientRect();
        return this.toLatent(event.clientX - box.left, event.clientY - box.top);
      };
      let dragging = null; // the id of the pointer that holds the point
      this.map.addEventListener("pointerdown", (event) => {
        dragging = event.pointerId;
        this.map.setPointerCapture(event.pointerId); // keep the drag when the pointer leaves the map
        this.moveTo(...at(event));
      });
      this.map.addEventListener("pointermove", (event) => {
        if (event.pointerId === dragging) this.moveTo(...at(event));
      });
      const release = (event) => { if (event.pointerId === dragging) dragging = null; };
      this.map.addEventListener("pointerup", release);
      this.map.addEventListener("pointercancel", release);
      this.map.addEventListener("keydown", (event) => {
        const step = event.shiftKey ? 0.5 : 0.1;
        const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, step], ArrowDown: [0, -step] };
        if (!moves[event.key]) return;
        event.preventDefault();
        const [[x0, x1], [y0, y1]] = this.model.ranges;
        const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
        this.moveTo(clamp(this.z[0] + moves[event.key][0], x0, x1), clamp(this.z[1] + moves[event.key][1], y0, y1));
      });
    }
  }

  /* One slider per chosen dimension (largest KL first); a switch between sibling models, e.g. one per beta. */
  class SliderExplorer extends Explorer {
    constructor(root, spec, manifest) {
      super(root, spec, manifest);
      this.sliders = el("div", { class: "ae-sliders" });
      this.note = el("p", { class: "ae-note" });
      const parts = [];
      if (spec.models.length > 1) parts.push(this.buildSwitch());
      parts.push(this.sliders, this.note);
      this.controls.replaceChildren(...parts);
      this.useModel(0).catch((error) => this.fail(error));
    }

    buildSwitch() {
      const group = el("div", { class: "ae-switch", role: "radiogroup", "aria-label": this.spec.switch || "model" });
      group.appendChild(el("span", { text: (this.spec.switch || "model") + ":" }));
      this.spec.models.forEach((model, i) => {
        const button = el("button", { type: "button", role: "radio", "data-index": String(i),
          text: model.label.replace(/^.*=\s*/, "") });
        button.addEventListener("click", () => this.useModel(i).catch((error) => this.fail(error)));
        group.appendChild(button);
      });
      this.switch = group;
      return group;
    }

    async useModel(index) {
      this.model = this.spec.models[index];
      if (this.switch) {
        this.switch.querySelectorAll("button").forEach((b, i) => {
          b.classList.toggle("ae-selected", i === index);
          b.setAttribute("aria-checked", String(i === index));
        });
      }
      this.inputs = this.model.sliders.map((slider) => {
        const input = el("input", { type: "range", min: slider.min, max: slider.max, step: "0.01",
          "data-dim": String(slider.dim), "aria-label": "dimension " + slider.dim + " (" + dimText(slider.dim) + ")" });
        const value = el("output", {});
        input.addEventListener("input", () => {
          this.z[slider.dim] = Number(input.value);
          value.textContent = Number(input.value).toFixed(2);
          this.request();
        });
        return { slider, input, value };
      });
      this.sliders.replaceChildren(...this.inputs.map(({ slider, input, value }) =>
        el("label", { class: "ae-slider" }, [
          el("span", { class: "ae-dim", title: "dimension " + slider.dim + ", counted from 0 as in the chapters" },
            [dimName(slider.dim)]),
          input, value,
          el("span", { class: "ae-kl", text: "KL " + slider.kl.toFixed(2) }),
        ])));
      const held = this.model.latent_dim - this.model.sliders.length;
      this.note.textContent = this.model.sliders.length + " of " + this.model.latent_dim +
        " dimensions (numbered from 0, as in the chapters), largest KL (nats) first" +
        (held ? "; the other " + held + " stay at the start point." : ".");
      await session(this.model); // load before the first decode, so a switch shows no half state
      this.startFrom(this.example);
    }

    syncControls() {
      for (const { slider, input, value } of this.inputs) {
        input.value = String(this.z[slider.dim]);
        value.textContent = this.z[slider.dim].toFixed(2);
      }
    }
  }

  async function main() {
    const roots = document.querySelectorAll(".ae-explorer");
    if (location.protocol === "file:") {
      roots.forEach((root) => showMessage(root, "The explorer cannot start from a file:// page.",
        "Its decoders run as WebAssembly, which browsers do not load for pages opened straight from disk."));
      throw new Error("opened from file://");
    }
    let manifest;
    try {
      manifest = await startRuntime();
    } catch (error) {
      roots.forEach((root) => showMessage(root, "The explorer could not start its decoder runtime.",
        String(error) + ". The page must be served over HTTP, with the book's _static/explorer/ folder."));
      throw error;
    }
    for (const root of roots) {
      const id = root.dataset.explorer;
      const spec = manifest.explorers.find((e) => e.id === id);
      const partial = spec && (manifest.missing || {})[id];
      if (partial) root.insertAdjacentHTML("afterend", "<p class=\"ae-message\"></p>");
      if (partial) root.nextElementSibling.textContent = partial;
      if (!spec) {
        const missing = (manifest.missing || {})[id];
        showMessage(root, missing ? "Not trained yet." : "No explorer named " + id + ".",
          missing || "Rebuild the book (make book) to export its models.");
        continue;
      }
      explorers[id] = spec.kind === "map" ? new MapExplorer(root, spec, manifest)
        : new SliderExplorer(root, spec, manifest);
    }
  }

  function whenLoaded(fn) {
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", fn);
    else fn();
  }

  window.aecourseExplorer = { explorers, ready };
  whenLoaded(() => main().then(() => resolveReady(explorers), (error) => {
    window.aecourseExplorer.failure = String(error);
    rejectReady(error);
  }));
})();
