// doudi pages: a little progressive enhancement; every page works without it.
document.addEventListener("DOMContentLoaded", () => {
  // Ask before irreversible actions (closing a case).
  document.querySelectorAll("button[data-confirm]").forEach((button) => {
    button.addEventListener("click", (event) => {
      if (!window.confirm(button.dataset.confirm)) event.preventDefault();
    });
  });
  // "Select all" checkbox of the bulk reassignment table.
  document.querySelectorAll("input[data-check-all]").forEach((box) => {
    box.addEventListener("change", () => {
      const name = box.dataset.checkAll;
      box.closest("form, table").querySelectorAll(`input[type=checkbox][name="${name}"]`)
        .forEach((item) => { item.checked = box.checked; });
    });
  });
  // Move keyboard focus to the first field with a problem, so the worker sees what to fix.
  const problem = document.querySelector(".field-error");
  if (problem) {
    const form = problem.closest("form");
    if (form) {
      form.scrollIntoView({ block: "start" });
      const field = problem.previousElementSibling;
      if (field && typeof field.focus === "function") field.focus();
    }
  }
});
