// The viewer: a full-size image over the page. Arrow keys move between frames, Esc closes.
// Inline and self-contained: the pages work from disk and load nothing from elsewhere.
(() => {
  const links = Array.from(document.querySelectorAll("a.view"));
  if (!links.length || !window.HTMLDialogElement) return;
  const dialog = document.createElement("dialog");
  dialog.className = "viewer";
  dialog.setAttribute("aria-label", "image viewer");
  const figure = document.createElement("figure");
  const image = document.createElement("img");
  const caption = document.createElement("figcaption");
  const keys = document.createElement("p");
  keys.className = "keys";
  keys.textContent = "← → move · Esc closes";
  figure.append(image, caption);
  dialog.append(figure, keys);
  document.body.append(dialog);
  let at = 0;
  const show = (position) => {
    at = (position + links.length) % links.length;
    const link = links[at];
    image.src = link.getAttribute("href");
    image.alt = link.dataset.caption || "";
    caption.textContent = link.dataset.caption || "";
    dialog.dataset.address = link.closest("[data-address]")?.dataset.address || "";
  };
  links.forEach((link, position) => link.addEventListener("click", (event) => {
    event.preventDefault();
    show(position);
    if (!dialog.open) dialog.showModal();
  }));
  dialog.addEventListener("keydown", (event) => {
    if (event.key === "ArrowRight" || event.key === "ArrowDown") show(at + 1);
    else if (event.key === "ArrowLeft" || event.key === "ArrowUp") show(at - 1);
    else if (event.key === "Escape") dialog.close();
    else return;
    event.preventDefault();
  });
  dialog.addEventListener("click", (event) => { if (event.target === dialog) dialog.close(); });
  dialog.addEventListener("close", () => links[at].focus());
})();
