#!/usr/bin/python3
"""A live PTP (ISO 15740) still camera on an emulated USB bus, for libusb clients, built on umockdev.

Usage:
    /usr/bin/python3 tests/umockdev/ptp_camera.py PHOTO.jpg -- COMMAND [ARGS...]

Creates a umockdev testbed holding one USB device (camera.umockdev beside this file: bus 001, address 005,
1a98:0002 "Leica M9 (umockdev)", a Still Image interface with bulk OUT 0x01, bulk IN 0x82 and interrupt IN 0x83),
answers the usbfs ioctls that libusb sends to /dev/bus/usb/001/005 (URBs, claim/release, control transfers, ...)
from this process, and runs COMMAND with the testbed preloaded (UMOCKDEV_DIR and LD_PRELOAD, as umockdev-wrapper
does). Every InitiateCapture "takes" PHOTO.jpg: the camera announces a new object on the interrupt endpoint and
serves the photo's bytes with GetObject. Exits with COMMAND's exit status (128+N when a signal N killed it), or 77
with a one-line reason when umockdev cannot be used here (so that callers can skip), or 2 on a usage error.

Only Debian's /usr/bin/python3 has the GObject bindings (python3-gi, gir1.2-umockdev-1.0).

Environment:
    TAMGA_UMOCKDEV_DEBUG=1   log every PTP operation, class request and event to stderr (2: every ioctl too)
    TAMGA_UMOCKDEV_CAPTURE_DELAY_MS   time between InitiateCapture's response and its events (default 50)
COMMAND gets, besides the testbed's variables: TAMGA_UMOCKDEV=1, TAMGA_UMOCKDEV_PHOTO=<absolute path of PHOTO>,
TAMGA_UMOCKDEV_DEVICE=1a98:0002, TAMGA_UMOCKDEV_BUS=1, TAMGA_UMOCKDEV_ADDRESS=5.

Never run cargo itself under this (rustc deadlocks under umockdev's preload): run a built test binary.
"""

import ctypes.util
import errno
import os
import signal
import struct
import subprocess
import sys
import time
import traceback
from collections import deque

HERE = os.path.dirname(os.path.abspath(__file__))
DEVICE_FILE = os.path.join(HERE, "camera.umockdev")
DEVNODE = "/dev/bus/usb/001/005"
SKIP = 77

try:
    DEBUG = int(os.environ.get("TAMGA_UMOCKDEV_DEBUG", "0") or "0")
except ValueError:
    DEBUG = 1


def log(msg, level=1):
    if DEBUG >= level:
        sys.stderr.write("[ptp-camera] %s\n" % msg)
        sys.stderr.flush()


# ---------------------------------------------------------------------------------------------------------------
# usbfs ABI (x86_64 / any LP64 Linux)
# ---------------------------------------------------------------------------------------------------------------


def _ioc(direction, nr, size):
    return (direction << 30) | (size << 16) | (ord("U") << 8) | nr


_NONE, _W, _R, _RW = 0, 1, 2, 3
USBDEVFS_CONTROL = _ioc(_RW, 0, 24)
USBDEVFS_RESETEP = _ioc(_R, 3, 4)
USBDEVFS_SETINTERFACE = _ioc(_R, 4, 8)
USBDEVFS_SETCONFIGURATION = _ioc(_R, 5, 4)
USBDEVFS_GETDRIVER = _ioc(_W, 8, 260)
USBDEVFS_SUBMITURB = _ioc(_R, 10, 56)
USBDEVFS_DISCARDURB = _ioc(_NONE, 11, 0)
USBDEVFS_REAPURB = _ioc(_W, 12, 8)
USBDEVFS_REAPURBNDELAY = _ioc(_W, 13, 8)
USBDEVFS_CLAIMINTERFACE = _ioc(_R, 15, 4)
USBDEVFS_RELEASEINTERFACE = _ioc(_R, 16, 4)
USBDEVFS_CONNECTINFO = _ioc(_W, 17, 8)
USBDEVFS_IOCTL = _ioc(_RW, 18, 16)
USBDEVFS_RESET = _ioc(_NONE, 20, 0)
USBDEVFS_CLEAR_HALT = _ioc(_R, 21, 4)
USBDEVFS_DISCONNECT = _ioc(_NONE, 22, 0)
USBDEVFS_CONNECT = _ioc(_NONE, 23, 0)
USBDEVFS_GET_CAPABILITIES = _ioc(_R, 26, 4)
USBDEVFS_DISCONNECT_CLAIM = _ioc(_R, 27, 264)
USBDEVFS_DROP_PRIVILEGES = _ioc(_W, 30, 4)
USBDEVFS_GET_SPEED = _ioc(_NONE, 31, 0)

IOCTL_NAMES = {v: k for k, v in globals().items() if k.startswith("USBDEVFS_")}

# ZERO_PACKET | BULK_CONTINUATION | NO_PACKET_SIZE_LIM | BULK_SCATTER_GATHER: libusb then sends one URB per transfer.
CAPABILITIES = 0x0F
USB_SPEED_HIGH = 3

URB_ISO, URB_INTERRUPT, URB_CONTROL, URB_BULK = 0, 1, 2, 3
# struct usbdevfs_urb: type, endpoint, status, flags, buffer, buffer_length, actual_length, start_frame,
# number_of_packets, error_count, signr, usercontext (56 bytes)
URB_FORMAT = "<BBxxiIxxxxQiiiiiIQ"
URB_SIZE = struct.calcsize(URB_FORMAT)
URB_STATUS_OFFSET = 4
URB_BUFFER_OFFSET = 16
URB_ACTUAL_OFFSET = 28
assert URB_SIZE == 56

EP_BULK_OUT, EP_BULK_IN, EP_INTERRUPT_IN = 0x01, 0x82, 0x83
ENDPOINTS = {0x00: URB_CONTROL, EP_BULK_OUT: URB_BULK, EP_BULK_IN: URB_BULK, EP_INTERRUPT_IN: URB_INTERRUPT}
BULK_MAX_PACKET = 512

# An empty REAPURBNDELAY that follows an empty one is answered after this long (or as soon as a URB completes):
# libusb polls the device node, which umockdev leaves as a regular file that always polls ready, so without this
# a waiting client spins on the ioctl socket (about a core's worth of CPU between the two processes). Cost: a
# client killed while such a request is held is never seen to close (umockdev only notices a close while it
# waits for the next request), so its pending URBs and claim stay; a client that closes the device normally
# (libusb_close, process exit while idle) is forgotten.
REAP_THROTTLE_MS = 5

# ---------------------------------------------------------------------------------------------------------------
# PTP
# ---------------------------------------------------------------------------------------------------------------

CONTAINER_COMMAND, CONTAINER_DATA, CONTAINER_RESPONSE, CONTAINER_EVENT = 1, 2, 3, 4

OK = 0x2001
GENERAL_ERROR = 0x2002
SESSION_NOT_OPEN = 0x2003
OPERATION_NOT_SUPPORTED = 0x2005
INVALID_STORAGE_ID = 0x2008
INVALID_OBJECT_HANDLE = 0x2009
DEVICE_PROP_NOT_SUPPORTED = 0x200A
STORE_READ_ONLY = 0x200E
NO_THUMBNAIL_PRESENT = 0x2010
DEVICE_BUSY = 0x2019
INVALID_DEVICE_PROP_VALUE = 0x201C
INVALID_PARAMETER = 0x201D
SESSION_ALREADY_OPEN = 0x201E

EVENT_OBJECT_ADDED = 0x4002
EVENT_CAPTURE_COMPLETE = 0x400D

FORMAT_EXIF_JPEG = 0x3801
STORAGE_ID = 0x00010001

OP_NAMES = {
    0x1001: "GetDeviceInfo",
    0x1002: "OpenSession",
    0x1003: "CloseSession",
    0x1004: "GetStorageIDs",
    0x1005: "GetStorageInfo",
    0x1006: "GetNumObjects",
    0x1007: "GetObjectHandles",
    0x1008: "GetObjectInfo",
    0x1009: "GetObject",
    0x100A: "GetThumb",
    0x100B: "DeleteObject",
    0x100C: "SendObjectInfo",
    0x100D: "SendObject",
    0x100E: "InitiateCapture",
    0x1014: "GetDevicePropDesc",
    0x1015: "GetDevicePropValue",
    0x1016: "SetDevicePropValue",
}
OPERATIONS = sorted(OP_NAMES)
DATA_OUT_OPERATIONS = (0x100C, 0x100D, 0x1016)

# Class-specific requests of the Still Image class (on the interface).
CLASS_CANCEL, CLASS_GET_EXTENDED_EVENT_DATA, CLASS_DEVICE_RESET, CLASS_GET_DEVICE_STATUS = 0x64, 0x65, 0x66, 0x67


def container(kind, code, tid, params=(), payload=b""):
    body = b"".join(struct.pack("<I", p & 0xFFFFFFFF) for p in params) + payload
    return struct.pack("<IHHI", 12 + len(body), kind, code, tid) + body


def ptp_str(s):
    if not s:
        return b"\x00"
    units = s.encode("utf-16-le") + b"\x00\x00"
    return bytes([len(units) // 2]) + units


def u16_array(xs):
    return struct.pack("<I", len(xs)) + b"".join(struct.pack("<H", x) for x in xs)


def u32_array(xs):
    return struct.pack("<I", len(xs)) + b"".join(struct.pack("<I", x) for x in xs)


def jpeg_size(b):
    """(width, height) from a JPEG's SOF segment, (0, 0) when there is none."""
    if b[:2] != b"\xff\xd8":
        return 0, 0
    i = 2
    while i + 4 <= len(b):
        if b[i] != 0xFF:
            i += 1
            continue
        m = b[i + 1]
        if m == 0xFF:
            i += 1
            continue
        if m in (0xD8, 0x01) or 0xD0 <= m <= 0xD7:
            i += 2
            continue
        if m in (0xD9, 0xDA):
            break
        seglen = int.from_bytes(b[i + 2 : i + 4], "big")
        if 0xC0 <= m <= 0xCF and m not in (0xC4, 0xC8, 0xCC) and i + 9 <= len(b):
            h = int.from_bytes(b[i + 5 : i + 7], "big")
            w = int.from_bytes(b[i + 7 : i + 9], "big")
            return w, h
        i += 2 + seglen
    return 0, 0


class InTransfer:
    """Bytes the camera sends on bulk IN as one transfer: a data container (ends with a zero-length packet when
    its length is a multiple of the packet size) or a response container."""

    def __init__(self, data, zlp=False, on_sent=None):
        self.data = data
        self.pos = 0
        self.zlp = zlp
        self.on_sent = on_sent


class Prop:
    def __init__(self, datatype, value, allowed):
        self.datatype = datatype
        self.value = value
        self.allowed = allowed


class PtpCamera:
    """The camera's PTP side: parses what arrives on bulk OUT, queues bulk IN transfers and events."""

    def __init__(self, photo, manufacturer, model, serial, schedule, capture_delay_ms):
        self.photo = photo
        self.width, self.height = jpeg_size(photo)
        self.manufacturer = manufacturer
        self.model = model
        self.serial = serial
        self.schedule = schedule
        self.capture_delay_ms = capture_delay_ms
        self.on_change = lambda: None
        self.session = 0
        self.objects = {}
        self.next_handle = 1
        self.shots = 0
        self.capturing = False
        self.bulk_in = deque()
        self.events = deque()
        self.out_buf = bytearray()
        self.data_out_for = None
        self.last_tid = 0

        def s(t):
            return ptp_str(t)

        def u16(v):
            return struct.pack("<H", v)

        def u32(v):
            return struct.pack("<I", v)

        self.props = {
            0x5003: Prop(0xFFFF, s("5212x3472"), [s("5212x3472"), s("2608x1736")]),  # ImageSize
            0x5005: Prop(0x0004, u16(2), [u16(v) for v in (1, 2, 4, 6)]),  # WhiteBalance
            0x500D: Prop(0x0006, u32(125), [u32(v) for v in (40, 80, 125, 250, 500)]),  # ExposureTime
            0x500F: Prop(0x0004, u16(200), [u16(v) for v in (160, 200, 400, 800, 1600)]),  # ExposureIndex
        }

    # -- what the USB side calls --

    def bulk_out(self, data):
        self.out_buf += data
        while len(self.out_buf) >= 12:
            length, kind, code, tid = struct.unpack_from("<IHHI", self.out_buf)
            if length < 12:
                log("bulk OUT: bad container length %d, dropping %d bytes" % (length, len(self.out_buf)))
                self.out_buf.clear()
                return
            if len(self.out_buf) < length:
                return
            c = bytes(self.out_buf[:length])
            del self.out_buf[:length]
            if kind == CONTAINER_COMMAND:
                n = (length - 12) // 4
                self.command(code, tid, list(struct.unpack_from("<%dI" % n, c, 12)))
            elif kind == CONTAINER_DATA:
                self.data_out(code, tid, c[12:])
            else:
                log("bulk OUT: ignoring container of type %d (code 0x%04X)" % (kind, code))

    def bulk_in_ready(self):
        return bool(self.bulk_in)

    def bulk_in_take(self, n):
        """What one IN URB of n bytes receives: min(n, remaining) of the current transfer; a zero-length packet
        when a data phase that is a multiple of the packet size has just exactly filled the previous URB."""
        t = self.bulk_in[0]
        chunk = t.data[t.pos : t.pos + n]
        t.pos += len(chunk)
        if t.pos >= len(t.data):
            self.bulk_in.popleft()
            if t.zlp and n > 0 and len(chunk) == n:
                self.bulk_in.appendleft(InTransfer(b"", on_sent=t.on_sent))
            elif t.on_sent:
                t.on_sent()
        return chunk

    def event_ready(self):
        return bool(self.events)

    def event_take(self):
        return self.events.popleft()

    def class_request(self, request_type, request, value, data):
        """A Still Image class request on the interface: returns the IN data (b"" for OUT), or None to stall."""
        if request_type == 0xA1 and request == CLASS_GET_DEVICE_STATUS:
            log("class request: Get Device Status")
            return struct.pack("<HH", 4, OK)
        if request_type == 0x21 and request == CLASS_CANCEL:
            code, tid = struct.unpack_from("<HI", data.ljust(6, b"\x00"))
            log("class request: Cancel (code 0x%04X, tid %d)" % (code, tid))
            self.abort_transaction()
            return b""
        if request_type == 0x21 and request == CLASS_DEVICE_RESET:
            log("class request: Device Reset")
            self.abort_transaction()
            self.session = 0
            return b""
        log("class request 0x%02X/0x%02X: stall" % (request_type, request))
        return None

    def abort_transaction(self):
        """Drops what the current transaction still had to send or receive."""
        if any(t.on_sent for t in self.bulk_in):
            self.capturing = False  # the InitiateCapture response was never read: no capture follows
        self.bulk_in.clear()
        self.out_buf.clear()
        self.data_out_for = None

    # -- PTP --

    def respond(self, code, tid, params=(), on_sent=None):
        if code != OK:
            log("  -> response 0x%04X" % code)
        self.bulk_in.append(InTransfer(container(CONTAINER_RESPONSE, code, tid, params), on_sent=on_sent))
        self.on_change()

    def send_data(self, code, tid, payload):
        c = container(CONTAINER_DATA, code, tid, payload=payload)
        self.bulk_in.append(InTransfer(c, zlp=len(c) % BULK_MAX_PACKET == 0))

    def event(self, code, tid, params):
        log("event 0x%04X tid=%d params=%s" % (code, tid, ["0x%X" % p for p in params]))
        self.events.append(container(CONTAINER_EVENT, code, tid, params))
        self.on_change()

    def device_info(self):
        return (
            struct.pack("<HIH", 100, 0, 0)
            + ptp_str("")
            + struct.pack("<H", 0)
            + u16_array(OPERATIONS)
            + u16_array([EVENT_OBJECT_ADDED, EVENT_CAPTURE_COMPLETE])
            + u16_array(sorted(self.props))
            + u16_array([FORMAT_EXIF_JPEG])
            + u16_array([FORMAT_EXIF_JPEG])
            + ptp_str(self.manufacturer)
            + ptp_str(self.model)
            + ptp_str("1.0")
            + ptp_str(self.serial)
        )

    def storage_info(self):
        capacity = 8 << 30
        used = sum(len(o["data"]) for o in self.objects.values())
        return (
            struct.pack("<HHHQQI", 0x0004, 0x0003, 0x0000, capacity, capacity - used, (capacity - used) // 100000)
            + ptp_str("SD card")
            + ptp_str("LEICA M9")
        )

    def object_info(self, o):
        return (
            struct.pack("<IHHI", STORAGE_ID, FORMAT_EXIF_JPEG, 0, len(o["data"]))
            + struct.pack("<HIII", 0, 0, 0, 0)
            + struct.pack("<IIII", self.width, self.height, 24 if self.width else 0, 0)
            + struct.pack("<HII", 0, 0, 0)
            + ptp_str(o["name"])
            + ptp_str(o["date"])
            + ptp_str(o["date"])
            + ptp_str("")
        )

    def prop_desc(self, code, p):
        return (
            struct.pack("<HHB", code, p.datatype, 1)
            + p.allowed[0]
            + p.value
            + struct.pack("<BH", 2, len(p.allowed))
            + b"".join(p.allowed)
        )

    def command(self, code, tid, params):
        log("op 0x%04X %s tid=%d params=[%s]" % (code, OP_NAMES.get(code, "?"), tid, ", ".join("0x%X" % p for p in params)))
        self.last_tid = tid
        p = list(params) + [0] * 5
        if code == 0x1001:
            self.send_data(code, tid, self.device_info())
            return self.respond(OK, tid)
        if code == 0x1002:
            if p[0] == 0:
                return self.respond(INVALID_PARAMETER, tid)
            if self.session:
                return self.respond(SESSION_ALREADY_OPEN, tid, [self.session])
            self.session = p[0]
            return self.respond(OK, tid)
        if code in DATA_OUT_OPERATIONS:
            self.data_out_for = (code, tid, p)  # answered once the data phase has arrived
            return
        if not self.session:
            return self.respond(SESSION_NOT_OPEN, tid)
        if code == 0x1003:
            self.session = 0
            return self.respond(OK, tid)
        if code == 0x1004:
            self.send_data(code, tid, u32_array([STORAGE_ID]))
            return self.respond(OK, tid)
        if code == 0x1005:
            if p[0] != STORAGE_ID:
                return self.respond(INVALID_STORAGE_ID, tid)
            self.send_data(code, tid, self.storage_info())
            return self.respond(OK, tid)
        if code in (0x1006, 0x1007):
            if p[0] not in (STORAGE_ID, 0xFFFFFFFF):
                return self.respond(INVALID_STORAGE_ID, tid)
            handles = sorted(self.objects) if p[1] in (0, FORMAT_EXIF_JPEG) and p[2] in (0, 0xFFFFFFFF) else []
            if code == 0x1006:
                return self.respond(OK, tid, [len(handles)])
            self.send_data(code, tid, u32_array(handles))
            return self.respond(OK, tid)
        if code in (0x1008, 0x1009, 0x100A):
            o = self.objects.get(p[0])
            if o is None:
                return self.respond(INVALID_OBJECT_HANDLE, tid)
            if code == 0x100A:
                return self.respond(NO_THUMBNAIL_PRESENT, tid)
            self.send_data(code, tid, self.object_info(o) if code == 0x1008 else o["data"])
            return self.respond(OK, tid)
        if code == 0x100B:
            if p[0] == 0xFFFFFFFF:
                self.objects.clear()
            elif self.objects.pop(p[0], None) is None:
                return self.respond(INVALID_OBJECT_HANDLE, tid)
            return self.respond(OK, tid)
        if code == 0x100E:
            if p[0] not in (0, STORAGE_ID):
                return self.respond(INVALID_STORAGE_ID, tid)
            if self.capturing:
                return self.respond(DEVICE_BUSY, tid)
            self.capturing = True
            return self.respond(OK, tid, on_sent=lambda: self.schedule(self.capture_delay_ms, lambda: self.captured(tid)))
        if code in (0x1014, 0x1015):
            prop = self.props.get(p[0] & 0xFFFF)
            if prop is None:
                return self.respond(DEVICE_PROP_NOT_SUPPORTED, tid)
            self.send_data(code, tid, self.prop_desc(p[0] & 0xFFFF, prop) if code == 0x1014 else prop.value)
            return self.respond(OK, tid)
        return self.respond(OPERATION_NOT_SUPPORTED, tid)

    def data_out(self, code, tid, payload):
        pending, self.data_out_for = self.data_out_for, None
        log("data phase for 0x%04X tid=%d: %d bytes" % (code, tid, len(payload)))
        if pending is None or pending[1] != tid:
            log("  (no operation waits for it: ignored)")
            return
        code, tid, p = pending
        if not self.session:
            return self.respond(SESSION_NOT_OPEN, tid)
        if code == 0x1016:
            prop = self.props.get(p[0] & 0xFFFF)
            if prop is None:
                return self.respond(DEVICE_PROP_NOT_SUPPORTED, tid)
            if payload not in prop.allowed:
                return self.respond(INVALID_DEVICE_PROP_VALUE, tid)
            prop.value = payload
            return self.respond(OK, tid)
        return self.respond(STORE_READ_ONLY, tid)

    def captured(self, tid):
        self.capturing = False
        self.shots += 1
        handle = self.next_handle
        self.next_handle += 1
        self.objects[handle] = {
            "name": "L%07d.JPG" % (1000000 + self.shots),
            "date": time.strftime("%Y%m%dT%H%M%S"),
            "data": self.photo,
        }
        self.event(EVENT_OBJECT_ADDED, tid, [handle])
        self.event(EVENT_CAPTURE_COMPLETE, tid, [tid])


# ---------------------------------------------------------------------------------------------------------------
# USB device (usbfs ioctls from the umockdev preload)
# ---------------------------------------------------------------------------------------------------------------


class Urb:
    def __init__(self, cs, mem, buf, kind, endpoint, length):
        self.cs = cs  # the client (open device fd) that submitted it
        self.mem = mem  # UMockdev.IoctlData of the struct usbdevfs_urb
        self.buf = buf  # UMockdev.IoctlData of its buffer (None when empty)
        self.kind = kind
        self.endpoint = endpoint
        self.length = length
        self.addr = mem.client_addr
        self.status = 0
        self.payload = b""
        self.payload_offset = 0
        self.actual = 0

    def write_back(self):
        self.mem.update(URB_STATUS_OFFSET, struct.pack("<i", self.status))
        self.mem.update(URB_ACTUAL_OFFSET, struct.pack("<i", self.actual))
        if self.payload:
            if self.buf is None:
                # IN buffers are fetched from the client only now, and only as far as they are written.
                self.buf = self.mem.resolve(URB_BUFFER_OFFSET, self.payload_offset + len(self.payload))
            self.buf.update(self.payload_offset, self.payload)


class ClientState:
    def __init__(self, client):
        self.client = client
        self.completed = deque()  # URBs to reap, in completion order
        self.held = None  # (arg, timer source or None) of a REAPURB/REAPURBNDELAY that waits
        self.last_reap_empty = False


class UsbCamera:
    def __init__(self, UMockdev, GLib, descriptors, strings, camera):
        self.GLib = GLib
        self.descriptors = descriptors
        self.strings = strings
        self.camera = camera
        camera.on_change = self.service
        camera.schedule = self.schedule
        self.ctx = None
        self.clients = {}
        self.pending = {EP_BULK_IN: deque(), EP_INTERRUPT_IN: deque()}
        self.claims = {}  # interface number -> ClientState that claimed it
        self.handler = UMockdev.IoctlBase()
        self.handler.connect("handle-ioctl", self.on_ioctl)
        self.handler.connect("client-connected", self.on_client_connected)

    # -- plumbing --

    def schedule(self, ms, fn):
        src = self.GLib.timeout_source_new(max(0, int(ms)))

        def fire(*_):
            try:
                fn()
            except Exception:
                traceback.print_exc()
            return False

        src.set_callback(fire)
        src.attach(self.ctx)
        return src

    def on_client_connected(self, handler, client):
        if self.ctx is None:
            self.ctx = self.GLib.MainContext.ref_thread_default()
        log("client connected (%s)" % client.get_devnode(), 2)
        self.prune()
        self.clients[client] = ClientState(client)

    def prune(self):
        """Forgets clients that have closed the device (umockdev emits no signal for that): their pending URBs
        must not take data or events meant for a later client."""
        for client in [c for c in self.clients if not c.get_connected()]:
            log("client disconnected", 2)
            cs = self.clients.pop(client)
            if cs.held and cs.held[1] is not None:
                cs.held[1].destroy()
            cs.held = None
            for q in self.pending.values():
                for urb in [u for u in q if u.cs is cs]:
                    q.remove(urb)
            for iface in [i for i, owner in self.claims.items() if owner is cs]:
                del self.claims[iface]

    def state(self, client):
        cs = self.clients.get(client)
        if cs is None:
            cs = self.clients[client] = ClientState(client)
        return cs

    def on_ioctl(self, handler, client):
        if self.ctx is None:
            self.ctx = self.GLib.MainContext.ref_thread_default()
        request = client.get_request() & 0xFFFFFFFF
        try:
            self.dispatch(self.state(client), client, request, client.get_arg())
        except Exception:
            sys.stderr.write("[ptp-camera] error handling %s:\n" % IOCTL_NAMES.get(request, "ioctl 0x%X" % request))
            traceback.print_exc()
            client.complete(-1, errno.EIO)
        return True

    # -- ioctls --

    def dispatch(self, cs, client, request, arg):
        name = IOCTL_NAMES.get(request, "0x%08X" % request)
        if request != USBDEVFS_REAPURBNDELAY:
            log("ioctl %s" % name, 2)
        if request == USBDEVFS_REAPURBNDELAY or request == USBDEVFS_REAPURB:
            return self.reap(cs, client, arg, block=request == USBDEVFS_REAPURB)
        cs.last_reap_empty = False
        if request == USBDEVFS_SUBMITURB:
            return self.submit(cs, client, arg)
        if request == USBDEVFS_DISCARDURB:
            return self.discard(cs, client, arg)
        if request == USBDEVFS_GET_CAPABILITIES:
            arg.resolve(0, 4).update(0, struct.pack("<I", CAPABILITIES))
            return client.complete(0, 0)
        if request in (USBDEVFS_CLAIMINTERFACE, USBDEVFS_RELEASEINTERFACE, USBDEVFS_DISCONNECT_CLAIM):
            iface = struct.unpack("<I", arg.resolve(0, 4).retrieve()[:4])[0]
            if iface != 0:
                return client.complete(-1, errno.ENOENT)
            self.prune()
            owner = self.claims.get(iface)
            if request == USBDEVFS_RELEASEINTERFACE:
                if owner is not cs:
                    return client.complete(-1, errno.EINVAL)
                del self.claims[iface]
            elif owner is not None and owner is not cs:
                log("interface %d is claimed by another open handle: EBUSY" % iface)
                return client.complete(-1, errno.EBUSY)
            else:
                self.claims[iface] = cs
            return client.complete(0, 0)
        if request == USBDEVFS_SETINTERFACE:
            iface, alt = struct.unpack("<II", arg.resolve(0, 8).retrieve()[:8])
            return client.complete(0, 0) if (iface, alt) == (0, 0) else client.complete(-1, errno.EINVAL)
        if request == USBDEVFS_SETCONFIGURATION:
            config = struct.unpack("<i", arg.resolve(0, 4).retrieve()[:4])[0]
            return client.complete(0, 0) if config in (-1, 0, 1) else client.complete(-1, errno.EINVAL)
        if request in (USBDEVFS_CLEAR_HALT, USBDEVFS_RESETEP):
            ep = struct.unpack("<I", arg.resolve(0, 4).retrieve()[:4])[0]
            log("%s 0x%02X" % (name, ep))
            return client.complete(0, 0) if ep in ENDPOINTS else client.complete(-1, errno.ENOENT)
        if request in (USBDEVFS_RESET, USBDEVFS_DROP_PRIVILEGES, USBDEVFS_CONNECT):
            return client.complete(0, 0)
        if request in (USBDEVFS_GETDRIVER, USBDEVFS_IOCTL, USBDEVFS_DISCONNECT):
            return client.complete(-1, errno.ENODATA)  # no kernel driver is bound
        if request == USBDEVFS_CONNECTINFO:
            arg.resolve(0, 8).update(0, struct.pack("<IBxxx", 5, 0))
            return client.complete(0, 0)
        if request == USBDEVFS_GET_SPEED:
            return client.complete(USB_SPEED_HIGH, 0)
        if request == USBDEVFS_CONTROL:
            return self.sync_control(client, arg)
        log("unsupported ioctl %s: ENOTTY" % name)
        return client.complete(-1, errno.ENOTTY)

    def submit(self, cs, client, arg):
        mem = arg.resolve(0, URB_SIZE)
        kind, ep, _status, flags, _buffer, length = struct.unpack(URB_FORMAT, mem.retrieve()[:URB_SIZE])[:6]
        if ep not in ENDPOINTS:
            return client.complete(-1, errno.ENOENT)
        if ENDPOINTS[ep] != kind or length < 0:
            return client.complete(-1, errno.EINVAL)
        # OUT and control buffers are read now; bulk and interrupt IN buffers when the URB is reaped.
        buf = mem.resolve(URB_BUFFER_OFFSET, length) if length > 0 and (ep & 0x80) == 0 else None
        urb = Urb(cs, mem, buf, kind, ep, length)
        log("SUBMITURB ep 0x%02X type %d len %d flags 0x%X" % (ep, kind, length, flags), 2)
        client.complete(0, 0)
        if ep == 0x00:
            self.control_urb(urb)
        elif ep == EP_BULK_OUT:
            data = buf.retrieve()[:length] if buf is not None else b""
            self.finish(urb, 0, b"", actual=length)
            self.camera.bulk_out(data)
        else:
            self.pending[ep].append(urb)
        self.service()

    def discard(self, cs, client, arg):
        addr = struct.unpack("<Q", arg.retrieve()[:8])[0]
        for ep, q in self.pending.items():
            for urb in q:
                if urb.addr == addr and urb.cs is cs:
                    q.remove(urb)
                    log("DISCARDURB ep 0x%02X" % ep, 2)
                    client.complete(0, 0)
                    self.finish(urb, -errno.ENOENT, b"")
                    return
        client.complete(-1, errno.EINVAL)

    def reap(self, cs, client, arg, block):
        if cs.completed:
            cs.last_reap_empty = False
            return self.deliver(cs, client, arg)
        if block:
            cs.held = (arg, None)
            return
        if not cs.last_reap_empty:
            cs.last_reap_empty = True
            return client.complete(-1, errno.EAGAIN)

        def give_up():
            if cs.held is not None and cs.held[0] is arg:
                cs.held = None
                client.complete(-1, errno.EAGAIN)

        cs.held = (arg, self.schedule(REAP_THROTTLE_MS, give_up))

    def deliver(self, cs, client, arg):
        urb = cs.completed.popleft()
        urb.write_back()
        arg.resolve(0, 8).set_ptr(0, urb.mem)
        log("reaped ep 0x%02X status %d actual %d" % (urb.endpoint, urb.status, urb.actual), 2)
        client.complete(0, 0)

    def finish(self, urb, status, payload, actual=None, payload_offset=0):
        urb.status = status
        urb.payload = payload
        urb.payload_offset = payload_offset
        urb.actual = len(payload) if actual is None else actual
        cs = urb.cs
        if self.clients.get(cs.client) is not cs:
            return  # its client has gone
        cs.completed.append(urb)
        if cs.held is not None:
            arg, timer = cs.held
            cs.held = None
            if timer is not None:
                timer.destroy()
            cs.last_reap_empty = False
            self.deliver(cs, cs.client, arg)

    def service(self):
        """Completes pending IN URBs with whatever the camera has to send."""
        self.prune()
        q = self.pending[EP_BULK_IN]
        while q and self.camera.bulk_in_ready():
            urb = q.popleft()
            self.finish(urb, 0, self.camera.bulk_in_take(urb.length))
        q = self.pending[EP_INTERRUPT_IN]
        while q and self.camera.event_ready():
            urb = q.popleft()
            ev = self.camera.event_take()
            if len(ev) > urb.length:
                self.finish(urb, -errno.EOVERFLOW, ev[: urb.length])
            else:
                self.finish(urb, 0, ev)

    # -- control transfers --

    def control(self, request_type, request, value, index, length, data):
        """Returns the IN data (b"" for OUT requests), or None to stall."""
        log("control %02X %02X %04X %04X %d" % (request_type, request, value, index, length), 2)
        if request_type == 0x80 and request == 6:  # GET_DESCRIPTOR
            dtype, didx = value >> 8, value & 0xFF
            if dtype == 1:
                return self.descriptors[:18]
            if dtype == 2 and didx == 0:
                return self.descriptors[18:]
            if dtype == 3:
                if didx == 0:
                    return bytes([4, 3, 0x09, 0x04])
                if didx in self.strings:
                    s = self.strings[didx].encode("utf-16-le")
                    return bytes([2 + len(s), 3]) + s
                return None
            if dtype == 6:  # device qualifier
                return bytes([10, 6, 0x00, 0x02, 0, 0, 0, 64, 1, 0])
            return None
        if request_type == 0x80 and request == 8:  # GET_CONFIGURATION
            return b"\x01"
        if request_type == 0x00 and request == 9:  # SET_CONFIGURATION
            return b""
        if request_type in (0x80, 0x81, 0x82) and request == 0:  # GET_STATUS
            return b"\x01\x00" if request_type == 0x80 else b"\x00\x00"
        if request_type == 0x81 and request == 10:  # GET_INTERFACE
            return b"\x00"
        if request_type == 0x01 and request == 11:  # SET_INTERFACE
            return b""
        if request_type in (0x00, 0x02) and request in (1, 3):  # CLEAR_FEATURE / SET_FEATURE
            return b""
        if request_type in (0x21, 0xA1) and (index & 0xFF) == 0:
            return self.camera.class_request(request_type, request, value, data)
        log("control request %02X %02X %04X %04X: stall" % (request_type, request, value, index))
        return None

    def control_urb(self, urb):
        raw = urb.buf.retrieve() if urb.buf is not None else b""
        if len(raw) < 8:
            return self.finish(urb, -errno.EINVAL, b"")
        request_type, request, value, index, length = struct.unpack_from("<BBHHH", raw)
        length = min(length, urb.length - 8)
        out = raw[8 : 8 + length] if not request_type & 0x80 else b""
        res = self.control(request_type, request, value, index, length, out)
        if res is None:
            return self.finish(urb, -errno.EPIPE, b"")
        if request_type & 0x80:
            return self.finish(urb, 0, res[:length], payload_offset=8)
        return self.finish(urb, 0, b"", actual=length)

    def sync_control(self, client, arg):
        ct = arg.resolve(0, 24)
        request_type, request, value, index, length, _timeout = struct.unpack_from("<BBHHHI", ct.retrieve())
        buf = ct.resolve(16, length) if length else None
        out = buf.retrieve()[:length] if (buf is not None and not request_type & 0x80) else b""
        res = self.control(request_type, request, value, index, length, out)
        if res is None:
            return client.complete(-1, errno.EPIPE)
        if request_type & 0x80:
            res = res[:length]
            if res and buf is not None:
                buf.update(0, res)
            return client.complete(len(res), 0)
        return client.complete(length, 0)


# ---------------------------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------------------------


def read_device_file(path):
    """The description's text, the descriptors (device + configuration) and the string descriptors."""
    text = open(path, encoding="utf-8").read()
    descriptors, attrs = None, {}
    for line in text.splitlines():
        if line.startswith("H: descriptors="):
            descriptors = bytes.fromhex(line.split("=", 1)[1].strip())
        elif line.startswith("A: ") and "=" in line:
            k, v = line[3:].split("=", 1)
            attrs[k] = v.replace("\\n", "\n").strip()
    if descriptors is None:
        raise ValueError("%s has no H: descriptors= line" % path)
    strings = {1: attrs.get("manufacturer", ""), 2: attrs.get("product", ""), 3: attrs.get("serial", "")}
    return text, descriptors, strings


def usage():
    sys.stderr.write("usage: /usr/bin/python3 %s PHOTO.jpg -- COMMAND [ARGS...]\n" % sys.argv[0])
    return 2


def main(argv):
    if "--" not in argv:
        return usage()
    i = argv.index("--")
    before, command = argv[:i], argv[i + 1 :]
    if len(before) != 1 or not command:
        return usage()
    photo_path = os.path.abspath(before[0])

    try:
        import gi

        gi.require_version("UMockdev", "1.0")
        from gi.repository import GLib, UMockdev
    except Exception as e:  # ImportError, ValueError (namespace not available)
        sys.stderr.write(
            "ptp_camera.py: SKIP: umockdev is not usable from %s (%s); needs Debian's /usr/bin/python3 with "
            "python3-gi and gir1.2-umockdev-1.0\n" % (sys.executable, str(e).strip())
        )
        return SKIP
    if not ctypes.util.find_library("umockdev-preload"):
        sys.stderr.write("ptp_camera.py: SKIP: libumockdev-preload.so.0 not found (install umockdev / libumockdev0)\n")
        return SKIP

    try:
        with open(photo_path, "rb") as f:
            photo = f.read()
    except OSError as e:
        sys.stderr.write("ptp_camera.py: cannot read the photo: %s\n" % e)
        return 2
    try:
        delay = int(os.environ.get("TAMGA_UMOCKDEV_CAPTURE_DELAY_MS", "50"))
    except ValueError:
        delay = 50

    text, descriptors, strings = read_device_file(DEVICE_FILE)
    camera = PtpCamera(photo, strings[1], strings[2], strings[3], None, delay)
    usb = UsbCamera(UMockdev, GLib, descriptors, strings, camera)

    testbed = UMockdev.Testbed.new()
    testbed.add_from_string(text)
    testbed.attach_ioctl(DEVNODE, usb.handler)

    env = dict(os.environ)
    env["UMOCKDEV_DIR"] = testbed.get_root_dir()
    preload = "libumockdev-preload.so.0"
    env["LD_PRELOAD"] = preload + (":" + env["LD_PRELOAD"] if env.get("LD_PRELOAD") else "")
    env["TAMGA_UMOCKDEV"] = "1"
    env["TAMGA_UMOCKDEV_PHOTO"] = photo_path
    env["TAMGA_UMOCKDEV_DEVICE"] = "1a98:0002"
    env["TAMGA_UMOCKDEV_BUS"] = "1"
    env["TAMGA_UMOCKDEV_ADDRESS"] = "5"
    log("testbed %s, photo %s (%d bytes), running %s" % (env["UMOCKDEV_DIR"], photo_path, len(photo), command))

    try:
        proc = subprocess.Popen(command, env=env)
    except OSError as e:
        sys.stderr.write("ptp_camera.py: cannot run %s: %s\n" % (command[0], e))
        return 127

    def forward(signum, _frame):
        try:
            proc.send_signal(signum)
        except OSError:
            pass

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, forward)
    # The ioctls are answered on umockdev's own worker thread (with its own GLib main context): this thread only
    # has to wait for the command.
    while True:
        try:
            rc = proc.wait()
            break
        except InterruptedError:
            continue

    testbed.detach_ioctl(DEVNODE)
    root = testbed.get_root_dir()
    del testbed  # removes the testbed directory
    if os.path.isdir(root):
        import shutil

        shutil.rmtree(root, ignore_errors=True)
    log("command exited with %d" % rc)
    return rc if rc >= 0 else 128 - rc


if __name__ == "__main__":
    rc = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(rc)
