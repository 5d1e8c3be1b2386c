#!/usr/bin/env python3
"""End-to-end tests of the operator's page in a real browser.

Each scenario starts `tamga demo` (simulated devices, embedded central receiver, the daemon and its page), opens the
page in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright's library; no downloaded browser) and
walks the applicant through it with the keyboard only, as an operator does. The demo's simulator console (its
standard input) plays the applicant and the faults: a dark photo, a badly placed finger, an unplugged scanner, the
central system going down. A screenshot of every step is saved in the artefacts folder.

    python3 tests/browser/operator_page.py --tamga target/debug/tamga --artifacts target/browser-artifacts [--only NAME]

Exit status: 0 all passed, 1 a scenario failed, 77 the browser or Playwright is missing (skipped).
"""

import argparse
import base64
import json
import os
import queue
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request

CHROMIUM = os.environ.get("TAMGA_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

try:
    from axe_playwright_python.sync_playwright import Axe
    from playwright.sync_api import expect, sync_playwright
except ImportError as e:
    print(
        f"skipped: {e.name} is missing (pip install playwright axe-playwright-python)",
        file=sys.stderr,
    )
    sys.exit(77)


class Demo:
    """`tamga demo` in the background, with its simulator console."""

    def __init__(self, tamga, language="en"):
        self.dir = tempfile.mkdtemp(prefix="tamga-browser-")
        self.tamga, self.language = tamga, language
        # A fixed port, so the page finds the agent again after a restart.
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self._start()

    def _start(self):
        self.proc = subprocess.Popen(
            [self.tamga, "demo", "--port", str(self.port), "--dir", self.dir, "--language", self.language],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=open(os.path.join(self.dir, "demo.log"), "a"),
            text=True,
            bufsize=1,
            env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "info"), "NO_COLOR": "1"},
        )
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.page_url = None
        deadline = time.time() + 60
        while self.page_url is None:
            line = self.lines.get(timeout=max(0.1, deadline - time.time()))
            m = re.search(r"operator page\s+(\S+)", line)
            if m:
                self.page_url = m.group(1)
            m = re.search(r"local API\s+(\S+)\s+token (\S+)", line)
            if m:
                self.base, self.token = m.group(1), m.group(2)

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def kill_and_restart(self, between=None):
        """SIGKILL (no shutdown at all), then the same agent again on the same folder and port."""
        self.proc.kill()
        self.proc.wait()
        if between:
            between()
        self._start()

    def sim(self, command):
        """Runs a simulator console command and returns its answer; fails on an error answer."""
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        answer = self.lines.get(timeout=30)
        while not answer.startswith(("ok:", "error:")):  # the demo's banner lines
            answer = self.lines.get(timeout=30)
        assert answer.startswith("ok:"), f"simulator `{command}`: {answer}"
        return answer

    def api(self, path):
        return json.loads(self.api_text(path))

    def api_text(self, path):
        req = urllib.request.Request(self.base + path, headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.read().decode()

    def stop(self):
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
            self.proc.wait(timeout=15)
        except Exception:
            self.proc.kill()
            self.proc.wait()

    def log(self):
        with open(os.path.join(self.dir, "demo.log")) as f:
            return f.read()[-6000:]


class Run:
    """One scenario: a demo, a browser page, and its screenshots."""

    def __init__(self, browser, demo, artifacts, name):
        self.demo = demo
        self.name = name
        self.artifacts = artifacts
        self.shots = 0
        self.context = browser.new_context(viewport={"width": 1400, "height": 950})
        self.page = self.context.new_page()
        self.errors = []
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        # Failed API answers are checked by status and path (`allowed`); other console errors fail the scenario.
        self.allowed = []
        self.page.on(
            "console",
            lambda m: self.errors.append(f"console {m.type}: {m.text}")
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None,
        )
        self.page.on("response", self._response)
        self.page.goto(demo.page_url)
        # The key is taken from the address and removed from it.
        expect(self.page.locator("#step-start")).to_be_visible()
        assert "token" not in self.page.url, self.page.url

    def _response(self, resp):
        if resp.status >= 400:
            path = resp.url.split("/", 3)[-1]
            if not any(st == resp.status and re.search(pat, path) for st, pat in self.allowed):
                self.errors.append(f"unexpected answer {resp.status} to {resp.request.method} /{path}")

    def shot(self, what):
        self.shots += 1
        path = os.path.join(self.artifacts, f"{self.name}-{self.shots:02d}-{what}.png")
        self.page.screenshot(path=path, full_page=True)

    def accessible(self, what):
        """An independent accessibility audit (axe-core, WCAG 2 rules) of the page as it stands: no serious or
        critical violation."""
        found = Axe().run(self.page).response["violations"]
        bad = [
            f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:4]}"
            for v in found
            if v["impact"] in ("serious", "critical")
        ]
        assert not bad, f"accessibility, {what}:\n" + "\n".join(bad)

    def key(self, k):
        self.page.keyboard.press(k)

    def close(self):
        self.context.close()


# ---------------------------------------------------------------------------------------------------------------
# Steps shared by the scenarios (keyboard only)


def start_applicant(r, operator="op-7"):
    page = r.page
    expect(page.locator("#step-start")).to_be_visible()
    if not page.locator("#operator").input_value():
        # The first applicant of the day: the operator types their name (remembered after that).
        expect(page.locator("#operator")).to_be_focused()
        page.keyboard.type(operator)
    r.key("Enter")
    expect(page.locator("#step-document")).to_be_visible()
    expect(page.locator('#steps li[data-step="document"]')).to_have_class(re.compile("current"))


def read_passport(r):
    page = r.page
    r.key("Enter")
    expect(page.locator('#document-result td[data-field="surname"]')).not_to_be_empty(timeout=20000)
    expect(page.locator("#mrz-checks li.pass")).to_have_count(5)
    expect(page.locator("#mrz-checks li.fail")).to_have_count(0)


def take_good_photo(r):
    page = r.page
    r.key("Enter")
    expect(page.locator('#checks li[data-check="face_count"].pass')).to_be_visible(timeout=30000)
    expect(page.locator("#checks li.fail")).to_have_count(0)
    expect(page.locator("#crop")).to_have_attribute("src", re.compile("^blob:"))


def all_fingers(r, timeout=120000):
    page = r.page
    expect(page.locator("#hand-diagram .finger.captured, #hand-diagram .finger.exception")).to_have_count(
        10, timeout=timeout
    )


def submit(r):
    page = r.page
    expect(page.locator("#step-review")).to_be_visible()
    r.key("Enter")
    expect(page.locator("#step-done")).to_be_visible(timeout=20000)
    bundle = page.locator("#done-bundle").inner_text()
    assert re.fullmatch(r"[0-9a-f-]{36}", bundle), bundle
    return bundle


def straight_to_review(r):
    """A whole applicant, straight through by Enter, up to the review."""
    start_applicant(r)
    read_passport(r)
    r.key("Enter")
    take_good_photo(r)
    r.key("Enter")
    r.key("Enter")
    all_fingers(r)
    r.key("Enter")
    expect(r.page.locator("#step-review")).to_be_visible()


def submitted_while_central_is_down(r):
    """A whole applicant, straight through, submitted while the central system is down: saved, waiting."""
    straight_to_review(r)
    bundle = submit(r)
    expect(r.page.locator("#done-state")).to_have_attribute("data-state", re.compile("queued|sending"))
    return bundle


def delivered(r, bundle, timeout=60000):
    expect(r.page.locator('#done-state[data-state="delivered"]')).to_be_visible(timeout=timeout)
    st = r.demo.api(f"/v1/bundles/{bundle}")
    assert st["state"] == "delivered" and st["receipt"], st
    # The receipt's reference, as the central system wrote it, is on the page.
    payload = st["receipt"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["bundle_id"] == bundle, claims
    expect(r.page.locator("#done-receipt")).to_contain_text(claims["storage_ref"])


# ---------------------------------------------------------------------------------------------------------------
# Scenarios


def full_applicant(r):
    """A whole applicant by keyboard: passport, photo with live view, ten fingers, review, submit, delivered."""
    page = r.page
    expect(page.locator("#station")).to_have_text("KZ-ALA-001-W01")
    for role in ["document", "camera", "fingerprint"]:
        expect(page.locator(f"#dev-{role}")).to_have_attribute("data-state", "ready")
    # Three languages from the message files, switched by the operator (Alt+L cycles en -> ru -> kk -> en).
    r.key("Alt+L")
    expect(page.locator("#start")).to_contain_text("Начать нового заявителя")
    r.key("Alt+L")
    expect(page.locator("#start")).to_contain_text("Жаңа өтініш берушіні бастау")
    r.shot("start-kazakh")
    r.accessible("start-kazakh")
    r.key("Alt+L")
    expect(page.locator("#start")).to_contain_text("Start a new applicant")
    r.shot("start")
    r.accessible("start")
    start_applicant(r)
    r.shot("passport-waiting")
    r.accessible("passport-waiting")
    read_passport(r)
    expect(page.locator("#mrz-warnings")).to_have_count(0)  # a valid, unexpired passport
    r.shot("passport-read")
    r.accessible("passport-read")
    r.key("Enter")
    expect(page.locator("#step-face")).to_be_visible()
    # The camera's live view arrives frame by frame.
    expect(page.locator("#preview")).to_have_attribute("data-frames", re.compile(r"^([3-9]|\d\d+)$"), timeout=20000)
    r.shot("photo-live-view")
    r.accessible("photo-live-view")
    take_good_photo(r)
    r.shot("photo-accepted")
    r.accessible("photo-accepted")
    r.key("Enter")
    expect(page.locator("#step-fingers")).to_be_visible()
    expect(page.locator('#hand-diagram .finger.selected[data-pos="right-thumb"]')).to_have_count(1)
    r.shot("fingers-start")
    r.accessible("fingers-start")
    r.key("Enter")  # the page goes finger to finger by itself
    expect(page.locator("#hand-diagram .finger.captured")).not_to_have_count(0, timeout=20000)
    r.shot("fingers-in-progress")
    r.accessible("fingers-in-progress")
    all_fingers(r)
    expect(page.locator("#finger-instruction")).to_contain_text("All ten fingers are done")
    # The top bar follows the device: busy while capturing, ready again after.
    expect(page.locator("#dev-fingerprint")).to_have_attribute("data-state", "ready")
    expect(page.locator("#finger-image")).to_have_attribute("src", re.compile("^blob:"))
    r.shot("fingers-done")
    r.accessible("fingers-done")
    r.key("Enter")
    expect(page.locator("#review tr.pass")).to_have_count(10)
    expect(page.locator("#review-missing")).to_have_count(0)
    expect(page.locator("#review-crop")).to_have_attribute("src", re.compile("^blob:"))
    expect(page.locator("#review")).not_to_contain_text("null")
    expect(page.locator("#document-result")).not_to_contain_text("null")
    r.shot("review")
    r.accessible("review")
    bundle = submit(r)
    r.shot("submitted")
    r.accessible("submitted")
    delivered(r, bundle)
    r.shot("delivered")
    r.accessible("delivered")
    expect(page.locator("#outbox")).to_contain_text("1 delivered")
    expect(page.locator("#link")).to_have_attribute("data-state", "ready")
    # The next applicant starts from a clean page.
    r.key("Enter")
    expect(page.locator("#step-start")).to_be_visible()


def passport_checks_and_cancel(r):
    """A misprinted passport fails its check digits and cannot be submitted; an expired one reads with the
    warning; the review lists what is missing and leads there; F9 discards the applicant."""
    page = r.page
    r.allowed.append((502, r"/document$"))
    r.demo.sim("passport misprinted")
    start_applicant(r)
    # The reader is unplugged when the read starts: said, then resumed by itself when it is back.
    r.demo.sim("unplug document")
    expect(page.locator("#dev-document")).to_have_attribute("data-state", "unplugged", timeout=20000)
    r.key("Enter")
    expect(page.locator('#banner .message.error[data-code="device_failed"]')).to_be_visible(timeout=40000)
    expect(page.locator("#document-instruction")).to_contain_text("Waiting for the passport reader")
    r.shot("reader-unplugged")
    r.demo.sim("plug document")
    expect(page.locator("#mrz-checks li.fail")).not_to_have_count(0, timeout=30000)
    expect(page.locator("#document-instruction")).to_contain_text("check digits of this passport do not match")
    expect(page.locator('#document-actions button.primary')).to_contain_text("Read again")
    expect(page.locator('#steps li[data-step="document"]')).not_to_have_class(re.compile("complete"))
    r.shot("passport-misprinted")
    r.accessible("passport-misprinted")
    r.demo.sim("passport expired")
    r.key("Enter")
    expect(page.locator('#mrz-warnings li.fail[data-warning="expired"]')).to_contain_text("expired", timeout=20000)
    expect(page.locator("#mrz-checks li.fail")).to_have_count(0)
    expect(page.locator("#document-instruction")).to_contain_text("Check the warnings")
    r.shot("passport-expired")
    # Straight to the review: it says what is missing and Enter goes there.
    r.key("F4")
    expect(page.locator("#review-missing li")).to_have_count(2)
    expect(page.locator("#review-missing")).to_contain_text("No accepted photo")
    expect(page.locator("#review")).to_contain_text("The passport has expired")
    r.shot("review-incomplete")
    r.key("Enter")
    expect(page.locator("#step-face")).to_be_visible()
    r.key("F9")
    expect(page.locator("#cancel-dialog")).to_be_visible()
    r.shot("cancel-dialog")
    r.key("Enter")
    expect(page.locator("#step-start")).to_be_visible()
    expect(page.locator("#steps")).to_be_hidden()
    # The agent discarded it (not just the page).
    metrics = r.demo.api_text("/v1/metrics")
    assert 'tamga_sessions_total{outcome="cancelled"} 1' in metrics, metrics


def rejected_photo_and_retake(r):
    """A dark photo is refused with the failing checks and what to do; the retake is accepted. A reload keeps
    everything captured so far."""
    page = r.page
    start_applicant(r)
    read_passport(r)
    r.key("Enter")
    r.demo.sim("photo dark")
    r.key("Enter")
    expect(page.locator("#checks li.fail")).not_to_have_count(0, timeout=30000)
    expect(page.locator("#face-instruction")).to_contain_text("not accepted")
    failing = page.locator("#checks li.fail .advice").all_inner_texts()
    assert any("dark" in a.lower() or "no face" in a.lower() for a in failing), failing
    expect(page.locator("#crop")).to_be_hidden()
    expect(page.locator("#crop-note")).to_contain_text("not accepted")
    expect(page.locator('#steps li[data-step="face"]')).not_to_have_class(re.compile("complete"))
    r.shot("photo-rejected")
    r.accessible("photo-rejected")
    r.demo.sim("photo good")
    r.key("Enter")  # "take it again" is the highlighted action
    expect(page.locator("#face-instruction")).to_contain_text("Photo accepted", timeout=30000)
    expect(page.locator("#checks li.fail")).to_have_count(0)
    r.shot("photo-retaken")
    # The operator's browser reloads (or crashes): the open applicant comes back with what was captured.
    page.reload()
    expect(page.locator("#banner")).to_contain_text("restored")
    expect(page.locator("#step-fingers")).to_be_visible()
    expect(page.locator('#steps li[data-step="document"]')).to_have_class(re.compile("complete"))
    expect(page.locator('#steps li[data-step="face"]')).to_have_class(re.compile("complete"))
    r.shot("reloaded")
    r.key("F2")
    expect(page.locator("#checks li.pass")).not_to_have_count(0)
    r.key("F3")
    r.key("Enter")
    all_fingers(r)
    r.key("Enter")
    delivered(r, submit(r))


def finger_exception(r):
    """In Russian: a badly placed finger is refused with the reason; the next is declared bandaged; the rest are
    captured; the review shows the exception and the bundle goes through."""
    page = r.page
    expect(page.locator("#start")).to_contain_text("Начать нового заявителя")
    start_applicant(r)
    read_passport(r)
    r.key("Enter")
    take_good_photo(r)
    r.key("Enter")
    r.demo.sim("finger partial 1")
    r.key("Enter")
    expect(page.locator("#finger-quality p.fail")).not_to_have_count(0, timeout=30000)
    expect(page.locator("#finger-instruction")).to_contain_text("качество недостаточно")
    expect(page.locator('#hand-diagram .finger.selected[data-pos="right-thumb"]')).to_have_count(1)
    # The rejected attempt is shown, so the operator sees what the scanner saw.
    expect(page.locator("#finger-image")).to_have_attribute("src", re.compile("^blob:"))
    r.shot("finger-rejected")
    r.accessible("finger-rejected")
    # The operator moves to the right index finger and declares it bandaged: E, then 2.
    r.key("ArrowRight")
    expect(page.locator('#hand-diagram .finger.selected[data-pos="right-index"]')).to_have_count(1)
    r.key("KeyE")
    expect(page.locator("#exception-dialog")).to_be_visible()
    expect(page.locator("#exception-title")).to_contain_text("Указательный палец правой руки")
    r.shot("exception-dialog")
    r.accessible("exception-dialog")
    # Enter (the operator's habit) does not pick a reason: only its number does.
    r.key("Enter")
    expect(page.locator("#exception-dialog")).to_be_visible()
    expect(page.locator("#hand-diagram .finger.exception")).to_have_count(0)
    r.key("Digit2")
    expect(page.locator("#exception-dialog")).to_be_hidden()
    expect(page.locator('#hand-diagram .finger.exception[data-pos="right-index"]')).to_have_count(1)
    expect(page.locator('#hand-diagram .finger[data-pos="right-index"] text')).to_have_text("UP")
    # Back to the thumb, placed properly this time; then the page goes on through the rest.
    r.key("ArrowLeft")
    r.key("ArrowLeft")
    expect(page.locator('#hand-diagram .finger.selected[data-pos="right-thumb"]')).to_have_count(1)
    r.key("Enter")
    all_fingers(r)
    expect(page.locator("#hand-diagram .finger.captured")).to_have_count(9)
    r.shot("fingers-with-exception")
    r.key("Enter")
    expect(page.locator("#review tr.pass")).to_have_count(9)
    expect(page.locator('#review tr.warn[data-pos="right-index"]')).to_contain_text("Перевязан")
    r.shot("review-with-exception")
    delivered(r, submit(r))
    r.shot("delivered")


def unplugged_scanner(r):
    """The scanner is unplugged while it waits for a finger: the page says what happened and what to do, keeps
    the fingers already captured, and carries on by itself when the scanner is plugged back."""
    page = r.page
    # The capture cut short by the unplug answers 502 device_failed; that is what the page must explain.
    r.allowed.append((502, r"/fingers/right-ring$"))
    start_applicant(r)
    read_passport(r)
    r.key("Enter")
    take_good_photo(r)
    r.key("Enter")
    r.demo.sim("finger good 3")
    r.demo.sim("finger absent 1")
    r.key("Enter")
    expect(page.locator("#hand-diagram .finger.captured")).to_have_count(3, timeout=60000)
    expect(page.locator('#hand-diagram .finger.selected[data-pos="right-ring"]')).to_have_count(1)
    expect(page.locator("#finger-instruction")).to_contain_text("place it flat")
    r.demo.sim("unplug fingerprint")
    expect(page.locator("#banner")).to_be_visible(timeout=20000)
    expect(page.locator("#dev-fingerprint")).to_have_attribute("data-state", "unplugged", timeout=20000)
    # What happened and what to do: the capture's error from the API, and the device's removal.
    expect(page.locator('#banner .message.error[data-code="device_failed"]')).to_contain_text(
        "failed or is not connected"
    )
    expect(page.locator('#banner .message.error[data-code="device_failed"] .todo')).to_contain_text(
        "Check the device and its cable"
    )
    expect(page.locator('#banner .message[data-key="dev-fingerprint"]')).to_contain_text("disconnected")
    expect(page.locator("#finger-instruction")).to_contain_text("Waiting for the fingerprint scanner")
    expect(page.locator("#hand-diagram .finger.captured")).to_have_count(3)
    r.shot("scanner-unplugged")
    r.accessible("scanner-unplugged")
    r.demo.sim("plug fingerprint")
    # The page goes on by itself: the interrupted finger, then the rest.
    expect(page.locator('#banner .message[data-key="dev-fingerprint"]')).to_contain_text("continuing", timeout=20000)
    expect(page.locator('#banner .message.error[data-code="device_failed"]')).to_have_count(0)
    all_fingers(r)
    expect(page.locator("#dev-fingerprint")).to_have_attribute("data-state", "ready", timeout=20000)
    expect(page.locator("#hand-diagram .finger.captured")).to_have_count(10)
    r.shot("scanner-back")
    r.key("Enter")
    delivered(r, submit(r))


def unplugged_camera(r):
    """The camera is unplugged before the photo: the capture fails with what to do, the live view goes, and
    when the camera is back the page takes the photo by itself."""
    page = r.page
    r.allowed.append((502, r"/face$"))
    r.allowed.append((502, r"/camera/preview$"))
    r.allowed.append((503, r"/camera/preview$"))
    start_applicant(r)
    read_passport(r)
    r.key("Enter")
    expect(page.locator("#preview")).to_have_attribute("data-frames", re.compile(r"^\d+$"), timeout=20000)
    r.demo.sim("unplug camera")
    expect(page.locator("#dev-camera")).to_have_attribute("data-state", "unplugged", timeout=20000)
    r.key("Enter")
    expect(page.locator('#banner .message.error[data-code="device_failed"]')).to_be_visible(timeout=30000)
    expect(page.locator("#face-instruction")).to_contain_text("Waiting for the camera")
    # The live view does not keep showing the last frame of a camera that is gone.
    expect(page.locator("#preview")).to_be_hidden()
    expect(page.locator("#preview-note")).to_contain_text("unavailable")
    expect(page.locator('#steps li[data-step="document"]')).to_have_class(re.compile("complete"))
    r.shot("camera-unplugged")
    r.demo.sim("plug camera")
    expect(page.locator("#face-instruction")).to_contain_text("Photo accepted", timeout=40000)
    expect(page.locator("#crop")).to_have_attribute("src", re.compile("^blob:"))
    r.shot("camera-back")


def disk_full_at_submit(r):
    """The disk is below the outbox's reserve when the operator submits: the page says so and what to do, the
    applicant stays open with everything captured, and the submit goes through once there is room."""
    page = r.page
    r.allowed.append((507, r"/finalize$"))
    straight_to_review(r)
    r.demo.sim("disk full")
    r.key("Enter")
    message = page.locator('#banner .message.error[data-code="disk_reserve"]')
    expect(message).to_contain_text("disk is nearly full", timeout=20000)
    expect(message.locator(".todo")).to_contain_text("The open applicant is kept")
    expect(page.locator("#step-review")).to_be_visible()
    expect(page.locator("#review tr.pass")).to_have_count(10)
    r.shot("disk-full")
    r.accessible("disk-full")
    r.demo.sim("disk ok")
    delivered(r, submit(r))


def agent_killed(r):
    """The agent is killed: the page says so and waits. A bundle it had saved survives and is delivered after the
    restart; an applicant still open is lost (captures live in memory until sealed), and the page says to start
    again rather than sitting on a dead session."""
    page = r.page
    r.demo.sim("central down")
    bundle = submitted_while_central_is_down(r)

    def agent_is_down():
        expect(page.locator("#agent")).to_have_attribute("data-state", "bad", timeout=20000)
        expect(page.locator('#banner .message[data-key="agent"]')).to_contain_text("does not answer")
        r.shot("agent-down")
        r.accessible("agent-down")

    r.demo.kill_and_restart(between=agent_is_down)  # the restarted demo's central is up
    expect(page.locator("#agent")).to_have_attribute("data-state", "ready", timeout=30000)
    expect(page.locator('#banner .message[data-key="agent"]')).to_have_count(0)
    delivered(r, bundle, timeout=90000)
    r.shot("delivered-after-restart")
    # An open applicant when the agent dies: the restarted agent does not know it (404), as it must not.
    r.allowed.append((404, r"/sessions/[0-9a-f-]+$"))
    r.key("Enter")
    start_applicant(r)
    read_passport(r)
    r.demo.kill_and_restart()
    expect(page.locator("#step-start")).to_be_visible(timeout=30000)
    expect(page.locator("#banner")).to_contain_text("Start the applicant again")
    r.shot("open-applicant-lost")


def central_down_then_back(r):
    """Submitted while the central system is down: saved and shown as waiting, the link shown as unreachable;
    delivered with a verified receipt when the central system returns."""
    page = r.page
    r.demo.sim("central down")
    bundle = submitted_while_central_is_down(r)
    expect(page.locator("#done-text")).to_contain_text("saved on this workstation")
    expect(page.locator("#link")).to_have_attribute("data-state", "bad", timeout=30000)
    expect(page.locator("#outbox")).to_contain_text("1 waiting")
    r.shot("central-down")
    r.accessible("central-down")
    assert r.demo.api(f"/v1/bundles/{bundle}")["state"] in ("queued", "sending")
    r.demo.sim("central up")
    delivered(r, bundle, timeout=90000)
    expect(page.locator("#link")).to_have_attribute("data-state", "ready", timeout=30000)
    r.shot("central-back")


SCENARIOS = [
    ("full_applicant", "en", full_applicant),
    ("passport_checks", "en", passport_checks_and_cancel),
    ("rejected_photo", "en", rejected_photo_and_retake),
    ("finger_exception", "ru", finger_exception),
    ("unplugged_scanner", "en", unplugged_scanner),
    ("unplugged_camera", "en", unplugged_camera),
    ("central_down", "en", central_down_then_back),
    ("disk_full", "en", disk_full_at_submit),
    ("agent_killed", "en", agent_killed),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tamga", required=True)
    ap.add_argument("--artifacts", required=True)
    ap.add_argument("--only")
    args = ap.parse_args()
    if not os.path.exists(CHROMIUM):
        print(f"skipped: {CHROMIUM} is missing (apt-get install chromium)", file=sys.stderr)
        sys.exit(77)
    os.makedirs(args.artifacts, exist_ok=True)
    failed = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for name, language, scenario in SCENARIOS:
            if args.only and args.only != name:
                continue
            started = time.time()
            demo = Demo(args.tamga, language)
            run = None
            try:
                run = Run(browser, demo, args.artifacts, name)
                scenario(run)
                assert not run.errors, "the page logged errors:\n" + "\n".join(run.errors)
                print(f"PASS {name} ({time.time() - started:.1f} s, {run.shots} screenshots)", flush=True)
            except Exception:
                failed.append(name)
                print(f"FAIL {name}\n{traceback.format_exc()}", flush=True)
                if run:
                    run.shot("failure")
                    print("page errors:", *run.errors, sep="\n  ")
                print("demo log (tail):\n" + demo.log(), flush=True)
            finally:
                if run:
                    run.close()
                demo.stop()
                shutil.rmtree(demo.dir, ignore_errors=True)
        browser.close()
    print(f"screenshots in {args.artifacts}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
