// Render Adaptive Cards at phone width in headless Chromium and measure them (check.js).
//
//   node tests/render/render.mjs cards.json results.json screenshots-dir
//
// cards.json: [{"kind": "officer-task-accepted", "card": {...}}, ...]. For each theme (Teams
// light and dark, host configs and container CSS from adaptivecards-designer), each card is
// rendered 390 px wide by Microsoft's adaptivecards renderer; the card is screenshot to
// <dir>/<theme>/<kind>.png, and each of its show cards and its overflow menu ("..."), opened in
// turn, to <dir>/<theme>/<kind>--<button>.png. results.json: one entry per card and theme with the
// action labels cut short, the actions left out, and the text under 4.5:1 contrast.
//
// The browser is Debian's Chromium (CHROMIUM, else /usr/bin/chromium), driven by
// puppeteer-core, which never downloads one. Only file: URLs load: anything else is refused.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import puppeteer from "puppeteer-core";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const WIDTH = 390;
const DESIGNER = path.join(HERE, "node_modules", "adaptivecards-designer");
const THEMES = {
  light: {
    hostConfig: path.join(DESIGNER, "lib", "hostConfigs", "microsoft-teams-light.json"),
    css: path.join(DESIGNER, "dist", "containers", "teams-container-light.css"),
  },
  dark: {
    hostConfig: path.join(DESIGNER, "lib", "hostConfigs", "microsoft-teams-dark.json"),
    css: path.join(DESIGNER, "dist", "containers", "teams-container-dark.css"),
  },
};

function slug(text) {
  return (
    String(text)
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, "-")
      .replace(/^-+|-+$/g, "")
      .slice(0, 40) || "card"
  );
}

function merge(into, found) {
  for (const key of ["truncated", "contrast"]) {
    for (const item of found[key]) {
      const same = (x) => JSON.stringify(x) === JSON.stringify(item);
      if (!into[key].some(same)) into[key].push(item);
    }
  }
}

async function main() {
  const [cardsPath, resultsPath, shotsDir] = process.argv.slice(2);
  if (!cardsPath || !resultsPath || !shotsDir) {
    console.error("usage: node render.mjs cards.json results.json screenshots-dir");
    process.exit(2);
  }
  const cards = JSON.parse(fs.readFileSync(cardsPath, "utf8"));
  const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
  if (!fs.existsSync(executablePath)) {
    console.error(`no browser at ${executablePath} (apt-get install -y chromium)`);
    process.exit(3);
  }
  const browser = await puppeteer.launch({
    executablePath,
    headless: true,
    // --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
    args: ["--no-sandbox", "--disable-gpu", "--font-render-hinting=none", "--hide-scrollbars"],
  });
  const results = [];
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: WIDTH, height: 800, deviceScaleFactor: 1 });
    await page.setRequestInterception(true);
    page.on("request", (request) => {
      if (request.url().startsWith("file:")) request.continue();
      else request.abort(); // photos' https URLs, anything else: nothing leaves the machine
    });
    const pageErrors = [];
    page.on("pageerror", (error) => pageErrors.push(String(error)));

    for (const [theme, files] of Object.entries(THEMES)) {
      const hostConfig = JSON.parse(fs.readFileSync(files.hostConfig, "utf8"));
      fs.mkdirSync(path.join(shotsDir, theme), { recursive: true });
      await page.goto(pathToFileURL(path.join(HERE, "page.html")).href, { waitUntil: "load" });
      await page.evaluate((href) => window.setThemeCss(href), pathToFileURL(files.css).href);
      const pageBackground = hostConfig.containerStyles.default.backgroundColor;
      await page.evaluate((bg) => {
        document.body.style.background = bg.length === 9 ? "#" + bg.slice(3) : bg;
      }, pageBackground);

      for (const { kind, card } of cards) {
        const entry = {
          kind,
          theme,
          truncated: [],
          contrast: [],
          dropped: [],
          warnings: [],
          screenshots: [],
        };
        try {
          const rendered = await page.evaluate(
            (json, config, width) => window.renderCard(json, config, width),
            card,
            hostConfig,
            WIDTH,
          );
          if (!rendered.fontOk) {
            throw new Error(
              'the stand-in for "Segoe UI" (Liberation Sans) is not installed: apt-get install -y fonts-liberation',
            );
          }
          entry.warnings = rendered.warnings;
          entry.dropped = rendered.dropped;
          merge(entry, await page.evaluate(() => window.measure()));
          const host = await page.$("#host");
          const main = path.join(shotsDir, theme, `${kind}.png`);
          await host.screenshot({ path: main });
          entry.screenshots.push(main);

          // The whole card and room for a menu below it inside the viewport, so that no
          // screenshot resizes the page (a resize closes the overflow menu).
          const tall = await page.evaluate(() => document.documentElement.scrollHeight);
          await page.setViewport({ width: WIDTH, height: Math.max(800, tall + 300), deviceScaleFactor: 1 });
          const titles = await page.evaluate(() => window.showCardTitles());
          for (let i = 0; i < titles.length; i++) {
            const opened = await page.evaluate((n) => window.toggleShowCard(n), i);
            const shot = path.join(shotsDir, theme, `${kind}--${slug(titles[i])}.png`);
            if (opened.menu) {
              merge(entry, await page.evaluate(() => window.measureMenu()));
              const box = await page.evaluate(() => {
                const rects = [document.getElementById("host"), ...document.querySelectorAll(".ac-ctrl-popup-container")]
                  .map((e) => e.getBoundingClientRect());
                return { height: Math.ceil(Math.max(...rects.map((r) => r.bottom))) };
              });
              await page.screenshot({
                path: shot,
                clip: { x: 0, y: 0, width: WIDTH, height: box.height + 8 },
                captureBeyondViewport: false,
              });
              if (!(await page.evaluate(() => window.closeMenu()))) {
                throw new Error("the overflow menu did not close on Escape");
              }
            } else {
              merge(entry, await page.evaluate(() => window.measure()));
              await host.screenshot({ path: shot });
              await page.evaluate((n) => window.toggleShowCard(n), i);
            }
            entry.screenshots.push(shot);
          }
        } catch (error) {
          entry.error = String(error && error.stack ? error.stack : error);
        }
        await page.setViewport({ width: WIDTH, height: 800, deviceScaleFactor: 1 });
        if (pageErrors.length) {
          entry.error = [entry.error, ...pageErrors.splice(0)].filter(Boolean).join("\n");
        }
        results.push(entry);
      }
    }
  } finally {
    await browser.close();
  }
  fs.writeFileSync(resultsPath, JSON.stringify(results, null, 2));
}

main().catch((error) => {
  console.error(error && error.stack ? error.stack : error);
  process.exit(1);
});
