/* The integration page: Copy buttons, and the push's live progress (a small poll of a JSON
   endpoint while a run is running; no build step, no library). */
(function () {
  "use strict";

  document.querySelectorAll("[data-copy]").forEach(function (button) {
    button.addEventListener("click", function () {
      var input = document.getElementById(button.dataset.copy);
      input.select();
      var done = function () {
        button.textContent = "Copied";
        setTimeout(function () { button.textContent = "Copy"; }, 1500);
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(input.value).then(done, function () { document.execCommand("copy"); done(); });
      } else {
        document.execCommand("copy");
        done();
      }
    });
  });

  var box = document.getElementById("last-sync");
  if (!box) { return; }
  var interval = parseInt(box.dataset.pollMs || "1000", 10);
  var pushButtons = document.querySelectorAll("[data-push-button]");

  function seconds(total) {
    if (total === null || total === undefined) { return "—"; }
    if (total < 10) { return total.toFixed(1) + " s"; }
    var whole = Math.round(total);
    if (whole < 60) { return whole + " s"; }
    var minutes = Math.floor(whole / 60), secs = whole % 60;
    if (minutes < 60) { return minutes + " min " + (secs < 10 ? "0" : "") + secs + " s"; }
    var hours = Math.floor(minutes / 60);
    minutes = minutes % 60;
    return hours + " h " + (minutes < 10 ? "0" : "") + minutes + " min";
  }

  function field(name) { return box.querySelector("[data-field='" + name + "']"); }

  function setText(name, text) {
    var element = field(name);
    if (element) { element.textContent = text; }
  }

  function setRunning(on) {
    pushButtons.forEach(function (button) {
      button.disabled = on;
      button.title = on ? "A push is running" : "";
    });
  }

  function modelRow(model) {
    var body = box.querySelector("[data-testid='sync-table'] tbody");
    if (!body) { return null; }
    var row = body.querySelector("tr[data-model='" + model + "']");
    if (!row) {
      row = document.createElement("tr");
      row.dataset.model = model;
      var name = document.createElement("td");
      name.textContent = model.charAt(0).toUpperCase() + model.slice(1);
      var synced = document.createElement("td");
      synced.dataset.field = "objects_synced";
      var errors = document.createElement("td");
      errors.dataset.field = "errors";
      row.append(name, synced, errors);
      body.appendChild(row);
    }
    return row;
  }

  function render(progress) {
    box.dataset.status = progress.status;
    setText("status_label", progress.status_label);
    setText("elapsed", (progress.running ? "running for " : "took ") + seconds(progress.elapsed_seconds));
    setText("totals", progress.objects_synced + " synced, " + progress.errors + " errors");
    progress.models.forEach(function (model) {
      var row = modelRow(model.model);
      if (!row) { return; }
      row.querySelector("[data-field='objects_synced']").textContent = String(model.objects_synced);
      var errors = row.querySelector("[data-field='errors']");
      errors.textContent = String(model.errors);
      if (model.error_messages.length) {
        var list = document.createElement("ul");
        list.className = "seg-errors";
        model.error_messages.forEach(function (text) {
          var item = document.createElement("li");
          item.className = "help";
          item.textContent = text;
          list.appendChild(item);
        });
        errors.appendChild(list);
      }
    });
  }

  function finish(progress) {
    setRunning(false);
    var level = { succeeded: "success", partial: "warning" }[progress.status] || "error";
    var text = "Push finished: " + progress.status_label + " — " + progress.objects_synced +
      " objects synced, " + progress.errors + " errors, took " + seconds(progress.elapsed_seconds) + ".";
    if (progress.error) { text += " " + progress.error; }
    var flash = document.getElementById("warehouse-result");
    if (flash) {
      flash.textContent = "";
      var message = document.createElement("p");
      message.className = "seg-msg flash-new " + level;
      message.dataset.testid = "push-outcome";
      message.textContent = text;
      flash.appendChild(message);
      message.scrollIntoView({ block: "nearest" });
    }
    var health = document.querySelector("[data-part='push']");
    if (health) {
      health.className = "health-" + ({ succeeded: "good", partial: "warn" }[progress.status] || "bad");
      health.lastChild.textContent = "Last push: " + progress.status_label.toLowerCase() + " just now.";
    }
  }

  function poll() {
    var url = box.dataset.progressUrl + (box.dataset.run ? "?run=" + encodeURIComponent(box.dataset.run) : "");
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (answer) { return answer.ok ? answer.json() : Promise.reject(answer.status); })
      .then(function (progress) {
        render(progress);
        if (progress.running) { setTimeout(poll, interval); } else { finish(progress); }
      })
      .catch(function () { setTimeout(poll, interval * 3); });
  }

  if (box.dataset.status === "running") {
    setRunning(true);
    setTimeout(poll, interval);
  }
})();
