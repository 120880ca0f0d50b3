// The drawing page: pointer events (mouse, pen, touch) -> strokes in CSS pixels, Y down ->
// POST /api/symbols after each stroke, or POST /api/formulas on a pause or "Recognise".
"use strict";

(function () {
  const PAUSE_MS = 800; // formula mode reads the drawing this long after the last stroke
  const PALETTE = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b",
                   "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"];
  const $ = (id) => document.getElementById(id);
  const canvas = $("canvas");
  const context = canvas.getContext("2d");
  const state = {
    strokes: [],        // [[[x, y], ...], ...]
    current: null,      // the stroke being drawn
    colours: null,      // one colour per stroke, when the formula model names each stroke's symbol
    request: 0,         // the latest request's number: older answers are dropped
    shown: 0,           // the number of the request whose answer (or error) is shown
    pause: null,
  };
  window.inkPage = state;

  function mode() {
    return document.querySelector('input[name="mode"]:checked').value;
  }

  // --- Drawing -------------------------------------------------------------------------
  function fitCanvas() {
    const ratio = window.devicePixelRatio || 1;
    canvas.width = Math.round(canvas.clientWidth * ratio);
    canvas.height = Math.round(canvas.clientHeight * ratio);
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    redraw();
  }

  function redraw() {
    context.clearRect(0, 0, canvas.width, canvas.height);
    context.lineCap = "round";
    context.lineJoin = "round";
    context.lineWidth = 3;
    const all = state.current ? state.strokes.concat([state.current]) : state.strokes;
    all.forEach((stroke, index) => {
      context.strokeStyle = (state.colours && state.colours[index]) || "#111";
      context.fillStyle = context.strokeStyle;
      if (stroke.length === 1) {
        context.beginPath();
        context.arc(stroke[0][0], stroke[0][1], 1.5, 0, 2 * Math.PI);
        context.fill();
        return;
      }
      context.beginPath();
      context.moveTo(stroke[0][0], stroke[0][1]);
      for (const [x, y] of stroke.slice(1)) context.lineTo(x, y);
      context.stroke();
    });
  }

  function point(event) {
    const box = canvas.getBoundingClientRect();
    return [event.clientX - box.left, event.clientY - box.top];
  }

  canvas.addEventListener("pointerdown", (event) => {
    if (event.button !== 0) return;
    event.preventDefault();
    canvas.setPointerCapture(event.pointerId);
    clearTimeout(state.pause);
    state.colours = null;
    state.current = [point(event)];
    redraw();
  });

  canvas.addEventListener("pointermove", (event) => {
    if (!state.current) return;
    // A pen reports more points than animation frames: keep every one of them.
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
    for (const each of events.length ? events : [event]) {
      const [x, y] = point(each);
      const last = state.current[state.current.length - 1];
      if (x !== last[0] || y !== last[1]) state.current.push([x, y]);
    }
    redraw();
  });

  function endStroke() {
    if (!state.current) return;
    state.strokes.push(state.current);
    state.current = null;
    redraw();
    if (mode() === "symbol") {
      read();
    } else {
      clearTimeout(state.pause);
      state.pause = setTimeout(read, PAUSE_MS);
    }
  }
  canvas.addEventListener("pointerup", endStroke);
  canvas.addEventListener("pointercancel", endStroke);

  // --- Answers -------------------------------------------------------------------------
  function showError(message) {
    $("error").textContent = message;
    $("error").hidden = !message;
  }

  function katexInto(element, latex, display) {
    if (window.katex) {
      window.katex.render(latex, element, { throwOnError: false, displayMode: display });
    } else {
      element.textContent = latex;
    }
  }

  async function copy(text, button) {
    try {
      await navigator.clipboard.writeText(text);
    } catch (error) {
      const area = document.createElement("textarea");
      area.value = text;
      document.body.appendChild(area);
      area.select();
      document.execCommand("copy");
      area.remove();
    }
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = "Copy"; }, 1200);
  }

  function showSymbols(answer) {
    const list = $("candidates");
    list.replaceChildren();
    for (const candidate of answer.candidates) {
      const item = document.createElement("li");
      item.className = "candidate";
      const glyph = document.createElement("span");
      glyph.className = "glyph";
      // A command that takes an argument is shown with an empty box for it.
      const shown = candidate.latex === "\\sqrt" ? "\\sqrt{\\square}" : candidate.latex;
      katexInto(glyph, shown || "\\square", false);
      const code = document.createElement("code");
      code.className = "latex";
      code.textContent = candidate.latex;
      item.append(glyph, code);
      if (candidate.label !== candidate.latex) {
        const label = document.createElement("span");
        label.className = "label";
        label.textContent = "CROHME " + candidate.label;
        item.append(label);
      }
      const score = document.createElement("span");
      score.className = "score";
      score.textContent = (100 * candidate.score).toFixed(1) + "%";
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = "Copy";
      button.addEventListener("click", () => copy(candidate.latex, button));
      item.append(score, button);
      list.append(item);
    }
  }

  function showFormula(answer) {
    $("latex").textContent = answer.latex;
    $("copy-latex").hidden = !answer.latex;
    katexInto($("rendered"), answer.latex, true);
    const legend = $("legend");
    legend.replaceChildren();
    state.colours = null;
    if (answer.stroke_symbols && answer.input === "strokes") {
      const colour = {};
      for (const symbol of answer.stroke_symbols) {
        if (!(symbol in colour)) colour[symbol] = PALETTE[Object.keys(colour).length % PALETTE.length];
      }
      state.colours = answer.stroke_symbols.map((symbol) => colour[symbol]);
      for (const [symbol, shade] of Object.entries(colour)) {
        const item = document.createElement("li");
        item.style.borderColor = shade;
        item.textContent = symbol;
        legend.append(item);
      }
    }
    redraw();
  }

  async function post(body, headers) {
    const number = ++state.request;
    const endpoint = mode() === "symbol" ? "/api/symbols" : "/api/formulas";
    $("status").textContent = "Reading…";
    let response;
    let answer;
    try {
      response = await fetch(endpoint, { method: "POST", body, headers });
      answer = await response.json();
    } catch (error) {
      if (number === state.request) {
        showError("The server did not answer: " + error);
        $("status").textContent = "";
      }
      return;
    }
    if (number !== state.request) return; // a newer drawing is being read
    if (!response.ok) {
      showError(answer.error || answer.detail || ("HTTP " + response.status));
      $("status").textContent = "";
    } else {
      showError("");
      if (answer.candidates) showSymbols(answer); else showFormula(answer);
      $("status").textContent = answer.input === "strokes" ? "Read." : "Read from the uploaded file.";
      $("timing").textContent = answer.model.name + " v" + answer.model.version + ", " +
        (1000 * answer.seconds).toFixed(0) + " ms";
    }
    state.shown = number;
  }

  function read() {
    clearTimeout(state.pause);
    if (!state.strokes.length) return;
    post(JSON.stringify({ strokes: state.strokes }), { "Content-Type": "application/json" });
  }

  function clearAnswers() {
    $("candidates").replaceChildren();
    $("latex").textContent = "";
    $("rendered").replaceChildren();
    $("legend").replaceChildren();
    $("copy-latex").hidden = true;
    $("timing").textContent = "";
    showError("");
  }

  // --- Controls ------------------------------------------------------------------------
  $("undo").addEventListener("click", () => {
    state.strokes.pop();
    state.colours = null;
    redraw();
    if (state.strokes.length) read(); else { state.request++; clearAnswers(); }
  });
  $("clear").addEventListener("click", () => {
    state.strokes = [];
    state.colours = null;
    state.request++;
    redraw();
    clearAnswers();
    $("status").textContent = mode() === "symbol" ? "Draw a symbol." : "Draw a formula.";
  });
  $("recognise").addEventListener("click", read);
  $("copy-latex").addEventListener("click", (event) => copy($("latex").textContent, event.target));
  document.addEventListener("keydown", (event) => {
    if ((event.ctrlKey || event.metaKey) && event.key === "z") $("undo").click();
  });
  for (const radio of document.querySelectorAll('input[name="mode"]')) {
    radio.addEventListener("change", () => {
      const symbol = mode() === "symbol";
      $("symbol-answer").hidden = !symbol;
      $("formula-answer").hidden = symbol;
      state.colours = null;
      redraw();
      clearAnswers();
      $("status").textContent = symbol ? "Draw a symbol." : "Draw a formula.";
      read();
    });
  }
  $("upload").addEventListener("change", () => {
    const file = $("upload").files[0];
    if (!file) return;
    const form = new FormData();
    form.append("file", file, file.name);
    state.strokes = [];
    state.colours = null;
    redraw();
    clearAnswers();
    post(form, {});
    $("upload").value = "";
  });

  window.addEventListener("resize", fitCanvas);
  fitCanvas();
  fetch("/healthz").then((response) => response.json()).then((health) => {
    const names = [health.symbols, health.formulas].filter(Boolean)
      .map((model) => model.name + " v" + model.version);
    $("models").textContent = "Models: " + names.join(", ");
  }).catch(() => { $("models").textContent = "The server did not answer."; });
})();
