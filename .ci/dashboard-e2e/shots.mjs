// Screenshots for the browser tests. SHOTS=all (the Go tests set it when $KEAPSYNC_ARTIFACTS
// names a directory) takes one at every step, for a person to look at; otherwise only the pages
// open when a check fails are taken, as failure-N.png: full-page PNGs were a third of a browser
// test's CPU, in a temp directory nobody opened.
import path from 'node:path';

export function shooter(out) {
  const all = process.env.SHOTS === 'all';
  return (name, page) => (all ? page.screenshot({ path: path.join(out, name + '.png'), fullPage: true }) : Promise.resolve());
}

// failureShots takes every page of the browser's contexts, as they were when a check failed.
export async function failureShots(browser, out) {
  let n = 0;
  for (const ctx of browser.contexts()) {
    for (const page of ctx.pages()) {
      const file = path.join(out, `failure-${++n}.png`);
      await page.screenshot({ path: file, fullPage: true }).then(() => console.log('failure screenshot: ' + file), () => {});
    }
  }
}
