"""Who may read which live resource: SELECTOR_APP["AUTHORIZE"]."""

#: Resources anyone may read, signed in or not.
PUBLIC = {"res", "notes", "prices"}


def can_read(user, name):
    """Public resources for everyone, the others for staff only."""
    return name in PUBLIC or user.is_staff
