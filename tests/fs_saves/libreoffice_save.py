"""Saves a document the way LibreOffice's File > Save does, for tests/fs_saves.rs.

Usage: /usr/bin/python3 libreoffice_save.py PROFILE FILE LINE [save|save-as]

Starts a headless soffice with its own user profile (PROFILE, a folder),
loads FILE through UNO as a person opening it would (LibreOffice takes its
lock file `.~lock.NAME#` beside it), appends LINE as a new paragraph and
stores the document:

- `save` (the default): `XStorable.store()`, LibreOffice's own Save, in
  the format the file was loaded in;
- `save-as`: `storeAsURL()` onto the same file, which a person can do even
  for a file LibreOffice opened read-only.

Then closes the document (removing the lock file) and ends soffice. Exits 0
when the document was stored; 1 with LibreOffice's message on stderr when
storing failed; 2 when the document did not load.
"""

import os
import subprocess
import sys
import time

import uno
from com.sun.star.beans import PropertyValue
from com.sun.star.connection import NoConnectException
from com.sun.star.text.ControlCharacter import PARAGRAPH_BREAK


def prop(name, value):
    p = PropertyValue()
    p.Name = name
    p.Value = value
    return p


def connect(office, pipe):
    """The office's component context, once soffice accepts connections."""
    local = uno.getComponentContext()
    resolver = local.ServiceManager.createInstanceWithContext(
        "com.sun.star.bridge.UnoUrlResolver", local
    )
    deadline = time.monotonic() + 120
    while True:
        try:
            return resolver.resolve(
                "uno:pipe,name=%s;urp;StarOffice.ComponentContext" % pipe
            )
        except NoConnectException:
            if office.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def main():
    profile, path, line = sys.argv[1:4]
    mode = sys.argv[4] if len(sys.argv) > 4 else "save"
    pipe = "rightsfs_test_%d" % os.getpid()
    office = subprocess.Popen(
        [
            "soffice",
            "--headless",
            "--invisible",
            "--nologo",
            "--norestore",
            "--nodefault",
            "-env:UserInstallation=" + uno.systemPathToFileUrl(os.path.abspath(profile)),
            "--accept=pipe,name=%s;urp;" % pipe,
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    desktop = None
    try:
        ctx = connect(office, pipe)
        desktop = ctx.ServiceManager.createInstanceWithContext(
            "com.sun.star.frame.Desktop", ctx
        )
        url = uno.systemPathToFileUrl(os.path.abspath(path))
        doc = desktop.loadComponentFromURL(url, "_blank", 0, (prop("Hidden", True),))
        if doc is None:
            print("libreoffice could not load %s" % path, file=sys.stderr)
            return 2
        try:
            text = doc.getText()
            cursor = text.createTextCursor()
            cursor.gotoEnd(False)
            text.insertControlCharacter(cursor, PARAGRAPH_BREAK, False)
            text.insertString(cursor, line, False)
            if mode == "save-as":
                doc.storeAsURL(url, (prop("Overwrite", True),))
            else:
                doc.store()
        except Exception as e:  # UNO's IOException and friends
            print("libreoffice did not store %s: %s" % (path, e), file=sys.stderr)
            return 1
        finally:
            doc.close(True)
        return 0
    finally:
        if desktop is not None:
            try:
                desktop.terminate()
            except Exception:
                pass  # the bridge goes down with the office
        try:
            office.wait(timeout=60)
        except subprocess.TimeoutExpired:
            office.kill()
            office.wait()


if __name__ == "__main__":
    sys.exit(main())
