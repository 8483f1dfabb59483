// The progress bar of a background import: polls the job's status (the API's import job URL)
// and reloads the page once the job has finished, to show its report.
(function () {
  "use strict";
  const box = document.querySelector("[data-import-job-status]");
  if (!box) {
    return;
  }
  const bar = box.querySelector("progress");
  const label = box.querySelector(".import-progress-label");
  const template = box.dataset.progressText;

  function show(job) {
    bar.value = job.progress;
    label.textContent = template.replace("%(processed)s", job.processed).replace("%(total)s", job.total)
      .replace("%(progress)s", job.progress);
  }

  function poll() {
    fetch(box.dataset.importJobStatus, {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then(function (response) {
        if (!response.ok) {
          throw new Error(response.status);
        }
        return response.json();
      })
      .then(function (job) {
        show(job);
        if (job.status === "succeeded" || job.status === "failed") {
          window.location.reload();
        } else {
          window.setTimeout(poll, 1000);
        }
      })
      .catch(function () {
        window.setTimeout(poll, 3000);
      });
  }

  window.setTimeout(poll, 500);
}());
