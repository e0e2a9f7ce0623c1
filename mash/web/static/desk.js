// The editor's desk (see #17): the forms work without this file; it makes each action
// quicker (no full reload), saves the essay as the editor types, adds drag and drop to
// the roundup, and reloads the previews after each change.
"use strict";
(function () {
  let busy = Promise.resolve();

  // Replace each [data-swap] region and every version field with the new page's.
  function swap(html) {
    const fresh = new DOMParser().parseFromString(html, "text/html");
    document.querySelectorAll("[data-swap]").forEach(function (old) {
      const now = fresh.getElementById(old.id);
      if (now) old.replaceWith(document.importNode(now, true));
    });
    const version = fresh.querySelector("input.version");
    if (version) document.querySelectorAll("input.version").forEach(function (i) { i.value = version.value; });
    document.title = fresh.title;
    document.querySelectorAll(".previews iframe").forEach(function (frame) {
      const url = new URL(frame.src, location.href);
      url.searchParams.set("v", version ? version.value : String(Date.now()));
      frame.src = url.pathname + url.search;
    });
    ready();
  }

  // Post a form as the browser would, then show the page the redirect leads to; a page
  // with a note (a refused or merged change) is loaded whole, so the editor sees it all.
  function send(form, submitter) {
    busy = busy.then(function () {
      // read the form now, after the change before it: its version field is current
      const body = new URLSearchParams(new FormData(form, submitter));
      document.body.classList.add("saving");
      return fetch(form.getAttribute("action"), { method: "POST", body: body, credentials: "same-origin" })
        .then(function (response) {
          if (!response.ok || new URL(response.url).searchParams.has("note")) {
            location.assign(response.ok ? response.url : location.href);
            return;
          }
          return response.text().then(swap);
        })
        .catch(function () { form.submit(); })
        .finally(function () {
          document.body.classList.remove("saving");
          document.body.dataset.saved = String(Number(document.body.dataset.saved || 0) + 1);
        });
    });
    return busy;
  }

  document.addEventListener("submit", function (event) {
    const form = event.target;
    if (!form.classList.contains("act") || form.id === "proof-form") return;
    event.preventDefault();
    send(form, event.submitter);
  });

  // The essay: saved a moment after the editor stops typing.
  let timer = null;
  document.addEventListener("input", function (event) {
    if (event.target.id !== "essay") return;
    const state = document.getElementById("essay-state");
    if (state) state.textContent = "editing…";
    clearTimeout(timer);
    timer = setTimeout(function () {
      send(document.getElementById("essay-form")).then(function () {
        const now = document.getElementById("essay-state");
        if (now) now.textContent = "saved";
      });
    }, 500);
  });

  // Drag and drop: the new order goes to the server as the order form.
  function ready() {
    const list = document.getElementById("roundup");
    if (!list || !window.Sortable || list.dataset.sortable) return;
    list.dataset.sortable = "1";
    window.Sortable.create(list, {
      handle: ".handle",
      animation: 120,
      forceFallback: true, // pointer events, the same with a mouse, a pen and a finger
      onEnd: function (event) {
        if (event.oldIndex === event.newIndex) return;
        const form = document.getElementById("order-form");
        form.querySelectorAll("input[name=url]").forEach(function (i) { i.remove(); });
        list.querySelectorAll("li[data-url]").forEach(function (li) {
          const input = document.createElement("input");
          input.type = "hidden";
          input.name = "url";
          input.value = li.dataset.url;
          form.appendChild(input);
        });
        send(form);
      },
    });
  }
  ready();
})();
