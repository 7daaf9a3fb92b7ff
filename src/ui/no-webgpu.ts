// The page a browser without WebGPU gets instead of a blank screen: what is missing and which browsers
// work. Shared by the playground and the self-test page. Plain DOM (no Lit): it must render even when
// nothing else of the app can start.
export const WEBGPU_BROWSERS =
  'The playground runs on your GPU through WebGPU. It works in Chrome or Edge 113 and later on Windows, macOS and ChromeOS, ' +
  'Chrome 121+ on Android, Safari 26 on macOS/iOS, and Firefox 141+ on Windows. On Linux, Chrome needs WebGPU enabled ' +
  '(chrome://flags/#enable-unsafe-webgpu).';

/** Replaces `root`'s content with the explanation; `reason` is what the check found. */
export function showNoWebGPU(root: HTMLElement, reason: string): void {
  const p = (text: string, cls?: string) => {
    const el = document.createElement('p');
    el.textContent = text; // never parsed as HTML
    if (cls) el.className = cls;
    return el;
  };
  const h = document.createElement('h2');
  h.textContent = 'This browser cannot run the playground';
  root.replaceChildren(
    h,
    p(reason, 'fail'),
    p(WEBGPU_BROWSERS),
    p("Nothing you made is lost: your rankings, data and runs stay in this browser's storage and are there when you come back with WebGPU.", 'muted'),
  );
}
