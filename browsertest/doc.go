// Package browsertest renders scgate's admin status page in a real headless
// Chromium, driven with chromedp, against a running scgate binary that the
// test builds: the page's visible text and SVG, console errors, secrets in
// the DOM, basic accessibility (labels, headings, table headers, the
// contrast of the warning colours) and a screenshot.
//
// It is its own Go module, so chromedp and its dependencies stay out of
// scgate's go.mod. It needs the chromium binary (Debian package chromium;
// .ci/run installs it). Run it with:
//
//	cd browsertest && go test -count=1 ./...
//
// SCGATE_BROWSERTEST_OUT names a folder for the screenshot (default: the
// test's temporary folder); SCGATE_UPDATE_SCREENSHOT=1 also writes it to
// docs/status-page.png.
package browsertest
