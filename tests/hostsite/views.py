from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from .notes.models import Note


def home(request):
    return render(request, "home.html", {"notes": Note.objects.order_by("-id")[:5]})


@require_POST
def add_note(request):
    Note.objects.create(text=request.POST.get("text", "")[:500])
    return redirect("home")
