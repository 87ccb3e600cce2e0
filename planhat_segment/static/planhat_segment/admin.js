/* Every admin page: results and errors where the person looks, confirmations, and no
   silently lost edits. Plain JS, no build step. */
(function () {
  "use strict";

  // --- scroll to the first error, else to the result of what was just done -------------
  function reveal() {
    var error = document.querySelector("form ul.errorlist");
    if (error) {
      var row = error.closest(".row, .form-row, .fieldBox, td, fieldset") || error;
      row.scrollIntoView({ block: "center" });
      var input = row.querySelector("input:not([type=hidden]), select, textarea");
      if (input) { input.focus({ preventScroll: true }); }
      return;
    }
    var flash = document.querySelector(".seg-flash:not(:empty)");
    if (flash) { flash.scrollIntoView({ block: "center" }); }
  }

  // --- unsaved edits: a form's state when the page loaded, compared on every submit -----
  var tracked = Array.prototype.slice.call(document.querySelectorAll("form[data-dirty-check]"));
  var initial = new Map();
  function state(form) { return new URLSearchParams(new FormData(form)).toString(); }
  tracked.forEach(function (form) {
    // A form shown again with errors holds edits that were not saved: dirty from the start.
    initial.set(form, form.querySelector("ul.errorlist") ? "" : state(form));
  });
  function isDirty(form) { return state(form) !== initial.get(form); }
  function dirtyOthers(except) {
    return tracked.filter(function (form) { return form !== except && isDirty(form); });
  }
  function markDirty(form) {
    var button = form.querySelector("button[type=submit], input[type=submit]");
    var note = form.querySelector(".seg-dirty-note");
    if (isDirty(form)) {
      if (!note && button) {
        note = document.createElement("span");
        note.className = "seg-dirty-note";
        note.dataset.testid = "unsaved-note";
        note.textContent = "Unsaved changes";
        button.insertAdjacentElement("afterend", note);
      }
    } else if (note) {
      note.remove();
    }
  }
  tracked.forEach(function (form) {
    form.addEventListener("input", function () { markDirty(form); });
    form.addEventListener("change", function () { markDirty(form); });
  });

  var submitting = false;
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var others = dirtyOthers(form);
    if (others.length) {
      var names = others.map(function (f) { return "“" + f.dataset.dirtyCheck + "”"; }).join(", ");
      if (!window.confirm("You have unsaved changes in " + names + ". They will be lost if you continue. Continue anyway? (Cancel, then press that section's Save button to keep them.)")) {
        event.preventDefault();
        return;
      }
    }
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      return;
    }
    submitting = true;
  });
  window.addEventListener("beforeunload", function (event) {
    if (!submitting && dirtyOthers(null).length) {
      event.preventDefault();
      event.returnValue = "";
    }
  });

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", reveal);
  } else {
    reveal();
  }
})();
