#!/usr/bin/python3
"""Checks the umockdev PTP camera (ptp_camera.py) through the real libusb code path, with pyusb.

Run it under the emulator:
    /usr/bin/python3 tests/umockdev/ptp_camera.py PHOTO.jpg -- /usr/bin/python3 tests/umockdev/check_with_pyusb.py

Opens 1a98:0002, claims interface 0, does GetDeviceInfo, OpenSession, InitiateCapture, reads ObjectAdded and
CaptureComplete from the interrupt endpoint, GetObjectInfo and GetObject of the announced handle (once with one
large read, once packet by packet, checking where the zero-length packet comes), compares the bytes with the photo
($TAMGA_UMOCKDEV_PHOTO, or the first argument) and exits 0. Needs pyusb (Debian: python3-usb).
"""

import os
import struct
import sys

try:
    import usb.core
    import usb.util
except ImportError as e:
    print("check_with_pyusb.py: SKIP: pyusb is not installed (%s); apt-get install python3-usb" % e)
    sys.exit(77)

VID, PID = 0x1A98, 0x0002
EP_OUT, EP_IN, EP_INT = 0x01, 0x82, 0x83
PACKET = 512
TIMEOUT = 5000  # ms


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def ptp_string(b, off):
    n = b[off]
    off += 1
    s = b[off : off + 2 * n].decode("utf-16-le").rstrip("\x00")
    return s, off + 2 * n


def u16_array(b, off):
    (n,) = struct.unpack_from("<I", b, off)
    return list(struct.unpack_from("<%dH" % n, b, off + 4)), off + 4 + 2 * n


class Ptp:
    def __init__(self, dev):
        self.dev = dev
        self.tid = 0

    def read(self, size):
        return bytes(self.dev.read(EP_IN, size, TIMEOUT))

    def transaction(self, code, params=(), chunk=65536, expect_zlp=None, data_out=None):
        """Command, data out or data in (read in `chunk`-byte transfers), response.
        Returns (response code, params, data)."""
        tid = self.tid
        self.tid += 1
        cmd = struct.pack("<IHHI", 12 + 4 * len(params), 1, code, tid) + b"".join(struct.pack("<I", p) for p in params)
        check(self.dev.write(EP_OUT, cmd, TIMEOUT) == len(cmd), "short command write")
        if data_out is not None:
            c = struct.pack("<IHHI", 12 + len(data_out), 2, code, tid) + data_out
            check(self.dev.write(EP_OUT, c, TIMEOUT) == len(c), "short data write")
            if len(c) % PACKET == 0:
                self.dev.write(EP_OUT, b"", TIMEOUT)
        first = self.read(chunk)
        length, kind, rcode, rtid = struct.unpack_from("<IHHI", first)
        data = None
        if kind == 2:
            check(rcode == code and rtid == tid, "data container for 0x%04X/%d, wanted 0x%04X/%d" % (rcode, rtid, code, tid))
            buf = bytearray(first)
            last = len(first)
            while last == chunk and len(buf) < length:
                part = self.read(chunk)
                buf += part
                last = len(part)
            check(len(buf) == length, "data phase of %d bytes, container says %d" % (len(buf), length))
            data = bytes(buf[12:])
            resp = self.read(chunk)
            zlp = len(resp) == 0
            if zlp:
                resp = self.read(chunk)
            if expect_zlp is not None:
                check(zlp == expect_zlp, "zero-length packet after a %d-byte data phase read in %d-byte transfers: got %s, want %s" % (length, chunk, zlp, expect_zlp))
        else:
            resp = first
        length, kind, rcode, rtid = struct.unpack_from("<IHHI", resp)
        check(kind == 3, "expected a response container, got type %d" % kind)
        check(rtid == tid, "response for tid %d to tid %d" % (rtid, tid))
        check(length == len(resp), "response length %d, container says %d" % (len(resp), length))
        params = list(struct.unpack_from("<%dI" % ((length - 12) // 4), resp, 12))
        return rcode, params, data

    def ok(self, code, params=(), **kw):
        rcode, rparams, data = self.transaction(code, params, **kw)
        check(rcode == 0x2001, "operation 0x%04X answered 0x%04X" % (code, rcode))
        return rparams, data

    def event(self, timeout=TIMEOUT):
        b = bytes(self.dev.read(EP_INT, 64, timeout))
        length, kind, code, tid = struct.unpack_from("<IHHI", b)
        check(kind == 4 and length == len(b), "bad event container %s" % b.hex())
        return code, tid, list(struct.unpack_from("<%dI" % ((length - 12) // 4), b, 12))


def main():
    photo_path = os.environ.get("TAMGA_UMOCKDEV_PHOTO") or (sys.argv[1] if len(sys.argv) > 1 else None)
    check(photo_path is not None, "no photo: set TAMGA_UMOCKDEV_PHOTO or pass its path")
    photo = open(photo_path, "rb").read()

    dev = usb.core.find(idVendor=VID, idProduct=PID)
    check(dev is not None, "camera 1a98:0002 not found")
    check((dev.bus, dev.address) == (1, 5), "camera at %s/%s, want 1/5" % (dev.bus, dev.address))
    check(dev.manufacturer == "Leica" and dev.product == "M9 (umockdev)" and dev.serial_number == "UMOCK1", "strings")
    intf = dev.get_active_configuration()[(0, 0)]
    check((intf.bInterfaceClass, intf.bInterfaceSubClass, intf.bInterfaceProtocol) == (6, 1, 1), "interface class")
    check(sorted(e.bEndpointAddress for e in intf) == [EP_OUT, EP_IN, EP_INT], "endpoints")
    check(not dev.is_kernel_driver_active(0), "kernel driver reported active")
    usb.util.claim_interface(dev, 0)

    status = bytes(dev.ctrl_transfer(0xA1, 0x67, 0, 0, 32, TIMEOUT))
    check(status == bytes([4, 0, 0x01, 0x20]), "Get Device Status: %s" % status.hex())

    ptp = Ptp(dev)
    _, info = ptp.ok(0x1001)
    std, vext, vver = struct.unpack_from("<HIH", info)
    check(std == 100, "StandardVersion %d" % std)
    _, off = ptp_string(info, 8)
    off += 2
    ops, off = u16_array(info, off)
    events, off = u16_array(info, off)
    _props, off = u16_array(info, off)
    capture_formats, off = u16_array(info, off)
    image_formats, off = u16_array(info, off)
    manufacturer, off = ptp_string(info, off)
    model, off = ptp_string(info, off)
    _version, off = ptp_string(info, off)
    serial, off = ptp_string(info, off)
    check(off == len(info), "DeviceInfo has %d trailing bytes" % (len(info) - off))
    check(all(op in ops for op in range(0x1001, 0x100F)), "operations %s" % [hex(o) for o in ops])
    check(0x4002 in events and 0x400D in events, "events")
    check(capture_formats == [0x3801] and image_formats == [0x3801], "formats")
    check((manufacturer, model, serial) == ("Leica", "M9 (umockdev)", "UMOCK1"), "identity %r" % ((manufacturer, model, serial),))
    print("GetDeviceInfo: %s %s, %d operations" % (manufacturer, model, len(ops)))

    rcode, _, _ = ptp.transaction(0x1004)
    check(rcode == 0x2003, "GetStorageIDs without a session answered 0x%04X" % rcode)

    # Nothing on the interrupt endpoint yet: the read times out (libusb discards the URB).
    try:
        ptp.event(timeout=200)
        fail("an event before any capture")
    except usb.core.USBTimeoutError:
        pass

    ptp.tid = 0
    ptp.ok(0x1002, [1])
    ptp.tid = 1
    _, sids = ptp.ok(0x1004)
    check(sids == struct.pack("<II", 1, 0x00010001), "storage ids %s" % sids.hex())
    _, handles = ptp.ok(0x1007, [0xFFFFFFFF, 0, 0])
    check(handles == struct.pack("<I", 0), "objects before the capture")

    # A property set through a data-out phase, then read back.
    ptp.ok(0x1016, [0x500F], data_out=struct.pack("<H", 400))
    _, value = ptp.ok(0x1015, [0x500F])
    check(value == struct.pack("<H", 400), "ExposureIndex after SetDevicePropValue: %s" % value.hex())

    capture_tid = ptp.tid
    ptp.ok(0x100E, [0, 0])
    code1, _, p1 = ptp.event()
    code2, _, p2 = ptp.event()
    check(code1 == 0x4002, "first event 0x%04X, want ObjectAdded" % code1)
    check(code2 == 0x400D and p2 == [capture_tid], "second event 0x%04X %s, want CaptureComplete [%d]" % (code2, p2, capture_tid))
    handle = p1[0]
    print("InitiateCapture: ObjectAdded 0x%X, CaptureComplete" % handle)

    _, oi = ptp.ok(0x1008, [handle])
    storage, fmt, _prot, size = struct.unpack_from("<IHHI", oi)
    check(storage == 0x00010001 and fmt == 0x3801, "ObjectInfo storage/format")
    check(size == len(photo), "ObjectInfo size %d, photo %d" % (size, len(photo)))
    name, _ = ptp_string(oi, 52)
    width, height = struct.unpack_from("<II", oi, 26)
    print("GetObjectInfo: %s, %d bytes, %dx%d" % (name, size, width, height))

    total = 12 + len(photo)
    # A data phase whose length is a multiple of 512 ends with a zero-length packet: inside the last transfer when
    # that one is not filled, as a transfer of its own when it is.
    big = 1 << 20
    _, data = ptp.ok(0x1009, [handle], chunk=big, expect_zlp=total % PACKET == 0 and total % big == 0)
    check(data == photo, "GetObject (one read) returned %d bytes that differ from the photo" % len(data))
    # Packet by packet: every transfer is filled, so the zero-length packet comes as a transfer of its own.
    _, data = ptp.ok(0x1009, [handle], chunk=PACKET, expect_zlp=total % PACKET == 0)
    check(data == photo, "GetObject (512-byte reads) returned %d bytes that differ from the photo" % len(data))
    print("GetObject: %d bytes match the photo (data phase %d bytes, %s)" % (len(data), total, "ends with a zero-length packet" if total % PACKET == 0 else "ends short"))

    ptp.ok(0x100B, [handle, 0])
    rcode, _, _ = ptp.transaction(0x1008, [handle])
    check(rcode == 0x2009, "GetObjectInfo after DeleteObject answered 0x%04X" % rcode)
    ptp.ok(0x1003)

    # The recovery requests: Cancel, clear halts, Device Reset.
    dev.ctrl_transfer(0x21, 0x64, 0, 0, struct.pack("<HI", 0x4001, ptp.tid - 1), TIMEOUT)
    dev.clear_halt(EP_IN)
    dev.clear_halt(EP_OUT)
    dev.ctrl_transfer(0x21, 0x66, 0, 0, None, TIMEOUT)
    usb.util.release_interface(dev, 0)
    usb.util.dispose_resources(dev)

    # Closed and opened again (a new device fd): the camera still answers.
    dev = usb.core.find(idVendor=VID, idProduct=PID)
    usb.util.claim_interface(dev, 0)
    ptp = Ptp(dev)
    ptp.ok(0x1001)
    usb.util.release_interface(dev, 0)
    usb.util.dispose_resources(dev)
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
