// What each live column element carries: it imports the column's real code
// (live_column.js and live_column.css, served by the app at data.code_js and
// data.code_css) once per page and hands the column to it. A page run sends every element
// again, so the code itself is not in the element. If the code cannot be loaded (a proxy
// blocks the app's own routes, as it would block the event stream), the page falls back
// to polling.
// Sent without comments, blank lines and indentation (ui/live_code.py): keep each comment
// on a line of its own and every text literal on one line.
const loaded = (globalThis.__playgroundLiveCode ??= { modules: new Map(), askedFallback: false });

function stylesheet(href) {
  return new Promise((resolve, reject) => {
    const link = document.createElement("link");
    link.rel = "stylesheet";
    link.href = href;
    link.onload = resolve;
    link.onerror = () => {
      link.remove();
      reject(new Error(`The live column's style did not load from ${href}`));
    };
    document.head.appendChild(link);
  });
}

function load(js, css) {
  const key = `${js} ${css}`;
  let mount = loaded.modules.get(key);
  if (!mount) {
    // Absolute: this loader itself runs from a blob: URL, against which a path resolves
    // to nothing.
    const url = (path) => new URL(path, document.baseURI).href;
    // The style first, so a column is never drawn unstyled.
    mount = Promise.all([import(url(js)), stylesheet(url(css))]).then(([code]) => code.default);
    loaded.modules.set(key, mount);
  }
  return mount;
}

export default async function (component) {
  let mount;
  try {
    mount = await load(component.data.code_js, component.data.code_css);
  } catch (error) {
    console.warn(error);
    // One rerun for the page, whichever column fails first.
    if (!loaded.askedFallback) {
      loaded.askedFallback = true;
      component.setTriggerValue("fallback", true);
    }
    return undefined;
  }
  return mount(component);
}
