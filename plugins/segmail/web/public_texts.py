"""The words of the public unsubscribe pages, per language (chosen as for mails: exact, base, English)."""

from __future__ import annotations

from typing import TypedDict


class PageTexts(TypedDict):
    title: str
    question: str
    button: str
    done: str
    already: str
    test: str
    invalid: str
    expired: str
    error: str


TEXTS: dict[str, PageTexts] = {
    "en": {
        "title": "Unsubscribe",
        "question": "Do you want to stop receiving “{mailing}” at {address}?",
        "button": "Unsubscribe",
        "done": "Done: {address} will not receive these e-mails any more.",
        "already": "{address} is already unsubscribed. Nothing else to do.",
        "test": "This link comes from a test mail: nothing was changed.",
        "invalid": "This unsubscribe link is not valid. Please use the link from the e-mail as it is.",
        "expired": "This unsubscribe link has expired. Please use the link from a recent e-mail.",
        "error": "Something went wrong on our side. Please try again in a few minutes.",
    },
    "de": {
        "title": "Abmelden",
        "question": "Möchten Sie „{mailing}“ an {address} nicht mehr erhalten?",
        "button": "Abmelden",
        "done": "Erledigt: {address} erhält diese E-Mails nicht mehr.",
        "already": "{address} ist bereits abgemeldet. Es ist nichts weiter zu tun.",
        "test": "Dieser Link stammt aus einer Test-Mail: Es wurde nichts geändert.",
        "invalid": "Dieser Abmeldelink ist ungültig. Bitte verwenden Sie den Link aus der E-Mail unverändert.",
        "expired": "Dieser Abmeldelink ist abgelaufen. Bitte verwenden Sie den Link aus einer neueren E-Mail.",
        "error": "Bei uns ist ein Fehler aufgetreten. Bitte versuchen Sie es in einigen Minuten erneut.",
    },
    "fr": {
        "title": "Se désabonner",
        "question": "Voulez-vous ne plus recevoir « {mailing} » à l’adresse {address} ?",
        "button": "Se désabonner",
        "done": "C’est fait : {address} ne recevra plus ces e-mails.",
        "already": "{address} est déjà désabonnée. Il n’y a rien d’autre à faire.",
        "test": "Ce lien provient d’un e-mail de test : rien n’a été modifié.",
        "invalid": "Ce lien de désabonnement n’est pas valide. Utilisez le lien de l’e-mail tel quel.",
        "expired": "Ce lien de désabonnement a expiré. Utilisez le lien d’un e-mail plus récent.",
        "error": "Une erreur s’est produite de notre côté. Veuillez réessayer dans quelques minutes.",
    },
    "it": {
        "title": "Annulla iscrizione",
        "question": "Non vuoi più ricevere «{mailing}» all’indirizzo {address}?",
        "button": "Annulla iscrizione",
        "done": "Fatto: {address} non riceverà più queste e-mail.",
        "already": "{address} è già disiscritto. Non c’è altro da fare.",
        "test": "Questo link proviene da un’e-mail di prova: non è stato modificato nulla.",
        "invalid": "Questo link di disiscrizione non è valido. Usa il link dell’e-mail così com’è.",
        "expired": "Questo link di disiscrizione è scaduto. Usa il link di un’e-mail più recente.",
        "error": "Si è verificato un errore da parte nostra. Riprova tra qualche minuto.",
    },
    "es": {
        "title": "Darse de baja",
        "question": "¿Quiere dejar de recibir «{mailing}» en {address}?",
        "button": "Darse de baja",
        "done": "Hecho: {address} ya no recibirá estos correos.",
        "already": "{address} ya está dada de baja. No hay nada más que hacer.",
        "test": "Este enlace procede de un correo de prueba: no se ha cambiado nada.",
        "invalid": "Este enlace de baja no es válido. Utilice el enlace del correo tal cual.",
        "expired": "Este enlace de baja ha caducado. Utilice el enlace de un correo más reciente.",
        "error": "Se ha producido un error por nuestra parte. Inténtelo de nuevo en unos minutos.",
    },
    "nl": {
        "title": "Afmelden",
        "question": "Wilt u “{mailing}” niet langer ontvangen op {address}?",
        "button": "Afmelden",
        "done": "Klaar: {address} ontvangt deze e-mails niet meer.",
        "already": "{address} is al afgemeld. Er hoeft niets meer te gebeuren.",
        "test": "Deze link komt uit een testmail: er is niets gewijzigd.",
        "invalid": "Deze afmeldlink is niet geldig. Gebruik de link uit de e-mail zoals hij is.",
        "expired": "Deze afmeldlink is verlopen. Gebruik de link uit een recentere e-mail.",
        "error": "Er ging bij ons iets mis. Probeer het over een paar minuten opnieuw.",
    },
}
DEFAULT_LANGUAGE = "en"
