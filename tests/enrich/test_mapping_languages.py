"""Issue 19: headers of German, French, Spanish, Portuguese and Dutch CRM exports are mapped
(accents and case ignored), and when over a third of the rows are skipped for a missing
field, every place that shows the numbers names the unused columns that look like it and
the exact ``columns=`` call (``-c`` on the command line) that maps them."""

from __future__ import annotations

import html
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cleanlist_pandas as clp
from cleanlist_pandas.cli import main
from cleanlist_pandas.errors import CleanlistWarning, MappingError
from cleanlist_pandas.frame import mapping as mp
from cleanlist_pandas.frame.mapping import map_contacts, value_column
from cleanlist_pandas.frame.select import select

CONTACT = ("first_name", "last_name", "company_name", "company_domain", "linkedin_url")

# -------------------------------------------------------------- headers of real exports
#: field -> header, as the CRMs and tools of each language export them
EXPORTS: dict[str, dict[str, str]] = {
    "de-outlook": {
        "first_name": "Vorname",
        "last_name": "Nachname",
        "company_name": "Firma",
        "company_domain": "Firma Website",
        "linkedin_url": "LinkedIn Profil",
        "email": "E-Mail-Adresse",
        "phone": "Mobiltelefon",
    },
    "de-salesforce": {
        "first_name": "Vorname",
        "last_name": "Nachname",
        "company_name": "Unternehmen",
        "company_domain": "Webseite",
        "linkedin_url": "LinkedIn-URL",
        "email": "E-Mail",
        "phone": "Telefon",
    },
    "de-sheet": {
        "first_name": "VORNAME",
        "last_name": "Familienname",
        "company_name": "Firmenname",
        "company_domain": "Unternehmenswebsite",
        "linkedin_url": "LinkedIn-Profil-URL",
        "email": "E-Mail geschäftlich",
        "phone": "Handynummer",
    },
    "fr-hubspot": {
        "first_name": "Prénom",
        "last_name": "Nom",
        "company_name": "Nom de l'entreprise",
        "company_domain": "URL du site web",
        "linkedin_url": "Profil LinkedIn",
        "email": "Adresse e-mail",
        "phone": "Numéro de téléphone",
    },
    "fr-salesforce": {
        "first_name": "Prénom",
        "last_name": "Nom de famille",
        "company_name": "Société",
        "company_domain": "Site Web",
        "linkedin_url": "URL LinkedIn",
        "email": "Courriel",
        "phone": "Portable",
    },
    "fr-sheet": {
        "first_name": "PRENOM",
        "last_name": "Nom",
        "company_name": "Entreprise",
        "company_domain": "Site internet",
        "linkedin_url": "Lien LinkedIn",
        "email": "Adresse électronique",
        "phone": "Téléphone",
    },
    "es-hubspot": {
        "first_name": "Nombre",
        "last_name": "Apellidos",
        "company_name": "Nombre de la empresa",
        "company_domain": "URL del sitio web",
        "linkedin_url": "Perfil de LinkedIn",
        "email": "Correo electrónico",
        "phone": "Número de teléfono",
    },
    "es-salesforce": {
        "first_name": "Nombre",
        "last_name": "Apellido(s)",
        "company_name": "Compañía",
        "company_domain": "Sitio web",
        "linkedin_url": "URL de LinkedIn",
        "email": "Correo",
        "phone": "Móvil",
    },
    "es-sheet": {
        "first_name": "nombre",
        "last_name": "Apellido",
        "company_name": "Empresa",
        "company_domain": "Página web",
        "linkedin_url": "Perfil LinkedIn",
        "email": "Dirección de correo electrónico",
        "phone": "Teléfono",
    },
    "pt-br-hubspot": {
        "first_name": "Nome",
        "last_name": "Sobrenome",
        "company_name": "Nome da empresa",
        "company_domain": "URL do site",
        "linkedin_url": "Perfil do LinkedIn",
        "email": "E-mail",
        "phone": "Celular",
    },
    "pt-pt-sheet": {
        "first_name": "Primeiro nome",
        "last_name": "Apelido",
        "company_name": "Companhia",
        "company_domain": "Site",
        "linkedin_url": "URL do LinkedIn",
        "email": "Endereço de e-mail",
        "phone": "Telemóvel",
    },
    "pt-salesforce": {
        "first_name": "Nome",
        "last_name": "Sobrenome",
        "company_name": "Empresa",
        "company_domain": "Domínio",
        "linkedin_url": "Perfil no LinkedIn",
        "email": "Correio eletrônico",
        "phone": "Telefone",
    },
    "nl-hubspot": {
        "first_name": "Voornaam",
        "last_name": "Achternaam",
        "company_name": "Bedrijfsnaam",
        "company_domain": "Website",
        "linkedin_url": "LinkedIn-profiel",
        "email": "E-mailadres",
        "phone": "Telefoonnummer",
    },
    "nl-salesforce": {
        "first_name": "Voornaam",
        "last_name": "Achternaam",
        "company_name": "Bedrijf",
        "company_domain": "Webadres",
        "linkedin_url": "LinkedIn-URL",
        "email": "E-mail",
        "phone": "Mobiel",
    },
}


def _export(headers: dict[str, str], n: int = 3) -> pd.DataFrame:
    values = {
        "first_name": [f"Zoë{i}" for i in range(n)],
        "last_name": [f"Müller{i}" for i in range(n)],
        "company_name": [f"Firma {i} GmbH" for i in range(n)],
        "company_domain": [f"https://www.firma{i}.de/impressum" for i in range(n)],
        "linkedin_url": [f"https://de.linkedin.com/in/zoe-{i}/" for i in range(n)],
        "email": [f"zoe{i}@firma{i}.de" for i in range(n)],
        "phone": [None] + ["+49 30 1234567"] * (n - 1),
    }
    return pd.DataFrame({headers[f]: values[f] for f in headers})


@pytest.mark.parametrize("export", sorted(EXPORTS))
def test_a_crm_export_in_its_language_maps_every_field(export: str) -> None:
    headers = EXPORTS[export]
    df = _export(headers)
    m = map_contacts(df)
    assert m.mapping == {f: headers[f] for f in (*CONTACT, "email")}, m.describe()
    assert m.valid.all()
    assert m.contacts.loc[1, "company_domain"] == "firma1.de"
    assert m.contacts.loc[1, "linkedin_url"] == "https://www.linkedin.com/in/zoe-1"
    # the email and phone columns of only_missing= and fill= are found the same way
    assert df.columns[value_column(df, "phone")] == headers["phone"]
    assert df.columns[value_column(df, "email")] == headers["email"]
    s = select(df, only_missing=["email", "phone"], enrichment_type="full")
    assert s.kept.tolist() == [True, False, False]
    assert s.value_columns == {"email": headers["email"], "phone": headers["phone"]}


@pytest.mark.parametrize(
    "header",
    ["Nom complet", "Nombre completo", "Nome completo", "Volledige naam", "Vollständiger Name",
     "Naam"],
)
def test_a_full_name_header_in_another_language_is_split(header: str) -> None:
    m = map_contacts(pd.DataFrame({header: ["Ada Lovelace"], "Empresa": ["Acme"]}))
    assert m.mapping == {"full_name": header, "company_name": "Empresa"}
    assert m.contacts.loc[0, ["first_name", "last_name"]].tolist() == ["Ada", "Lovelace"]


def test_accents_case_and_unicode_forms_do_not_matter() -> None:
    variants = {
        "first_name": ["Prénom", "Prenom", "PRÉNOM", " prénom ", "Pre\u0301nom", "PRE-NOM"],
        "last_name": ["Nom de famille", "NOM_DE_FAMILLE", "nom-de-famille"],
        "company_name": ["Société", "SOCIETE", "Societe", "SOCIÉTÉ"],
        "company_domain": ["Página web", "PAGINA WEB", "pagina_web"],
        "linkedin_url": ["Perfil do LinkedIn", "PERFIL DO LINKEDIN"],
    }
    for field, headers in variants.items():
        for header in headers:
            df = pd.DataFrame({header: ["linkedin.com/in/x"], "Vorname": ["Ada"]})
            if field == "first_name":
                df = df.drop(columns="Vorname")
            assert map_contacts(df).mapping.get(field) == header, (field, header)
    for header in ("Teléfono móvil", "TELEFONO MOVIL", "Telefono-Movil"):
        df = pd.DataFrame({"LinkedIn": ["linkedin.com/in/x"], header: [None]})
        assert value_column(df, "phone") == 1, header


@pytest.mark.parametrize(
    ("a", "b", "field"),
    [
        ("Nom", "Nom de famille", "last_name"),  # both French last names
        ("Prénom", "Prenom", "first_name"),  # one header twice, with and without accent
        ("Firma", "Unternehmen", "company_name"),
        ("Sitio web", "Página web", "company_domain"),
    ],
)
def test_two_candidates_for_one_field_is_an_error_listing_both(a: str, b: str, field: str) -> None:
    df = pd.DataFrame({a: ["x"], b: ["y"], "LinkedIn": ["linkedin.com/in/x"]})
    with pytest.raises(MappingError) as ei:
        map_contacts(df)
    msg = str(ei.value)
    assert f"ambiguous column for {field}" in msg and repr(a) in msg and repr(b) in msg
    assert f"columns={{'{field}': {a!r}}}" in msg
    assert map_contacts(df, columns={field: b}).mapping[field] == b


def test_no_header_key_belongs_to_two_fields() -> None:
    seen: dict[str, str] = {}
    for lang, fields in mp.LANGUAGE_HEADERS.items():
        assert set(fields) <= set(mp.HEADER_ALIASES), lang
        for field, spellings in fields.items():
            for spelling in spellings:
                assert mp._header_key(spelling) in mp.HEADER_ALIASES[field], spelling
    for field, keys in mp.HEADER_ALIASES.items():
        for key in keys:
            assert seen.setdefault(key, field) == field, (key, field, seen[key])


def test_a_label_that_is_not_text_is_never_a_header_spelling() -> None:
    df = pd.DataFrame([["Ada", "L", "Acme"]])
    df.columns = pd.MultiIndex.from_tuples([("First", "Name"), ("Last", "Name"), ("x", "Firma")])
    with pytest.raises(MappingError, match="no contact columns"):
        map_contacts(df)


# -------------------------------------------------------------- the German CRM export
def _german_crm(n: int = 48) -> pd.DataFrame:
    rng = np.random.default_rng(19)
    firms = [f"Firma{i}" for i in range(n)]
    return pd.DataFrame(
        {
            "Anrede": rng.choice(["Herr", "Frau"], n),
            "Vorname": [f"Jürgen{i}" for i in range(n)],
            "Nachname": [f"Weiß{i}" for i in range(n)],
            "Firma": [f"{f} GmbH" for f in firms],
            "Firma Website": [None if i % 7 == 0 else f"https://www.{f.lower()}.de" for i, f in
                              enumerate(firms)],
            "LinkedIn Profil": [None if i % 3 else f"https://de.linkedin.com/in/jw-{i}" for i in
                                range(n)],
            # before the fix the e-mail domain was all the mapping had: 5 rows of 48 valid
            "E-Mail": [f"j{i}@{firms[i].lower()}.de" if i < 5 else None for i in range(n)],
        }
    )


def test_the_german_crm_export_of_48_rows_skips_none(client: clp.Client) -> None:
    df = _german_crm()
    m = df.cleanlist.mapping()
    assert m.mapping == {
        "linkedin_url": "LinkedIn Profil",
        "first_name": "Vorname",
        "last_name": "Nachname",
        "company_domain": "Firma Website",
        "company_name": "Firma",
        "email": "E-Mail",
    }
    assert m.valid.all() and m.hint() is None
    est = df.cleanlist.estimate(client=client)
    assert est.counts["invalid"] == 0 and est.counts["valid"] == 48 and est.hint is None
    with warnings.catch_warnings():
        warnings.simplefilter("error", CleanlistWarning)  # nothing to warn about
        out = df.cleanlist.enrich(client=client, progress=False)
    assert (out["cl_status"] != "skipped").all()


# -------------------------------------------------------------- the look-alike hint
CALL = "columns={'company_name': 'Firma (Account)', 'company_domain': 'Web (alt)'}"
CLI_CALL = "-c 'company_name=Firma (Account)' -c 'company_domain=Web (alt)'"


def _lookalikes(n: int = 12) -> pd.DataFrame:
    """Names map; the company is only in columns whose headers are no known spelling."""
    return pd.DataFrame(
        {
            "Vorname": [f"Ada{i}" for i in range(n)],
            "Nachname": [f"Lee{i}" for i in range(n)],
            "Firma (Account)": [f"Acme {i}" for i in range(n)],
            "Web (alt)": [f"https://www.acme{i}.de/" if i % 4 else None for i in range(n)],
            # look-alikes that are something else: never offered
            "Firmenadresse": [f"Hauptstraße {i}, Berlin" for i in range(n)],
            "Telefon Firma": ["+49 30 1234567"] * n,
            "Firma Twitter": [f"https://twitter.com/acme{i}" for i in range(n)],
            "Notizen": ["rief an"] * n,
        }
    )


def test_most_rows_skipped_names_the_look_alike_columns_and_the_call() -> None:
    m = map_contacts(_lookalikes())
    assert not m.valid.any()
    h = m.hint()
    assert h is not None
    assert h.skipped == (("company_domain or company_name", 12),) and h.rows == 12
    assert dict(h.candidates) == {
        "company_name": ("Firma (Account)",),
        "company_domain": ("Web (alt)",),
    }
    assert h.call == CALL and h.cli_call == CLI_CALL
    assert h.message.startswith("12 of 12 rows are skipped for a missing company_domain or ")
    assert h.message.endswith(f"Map them with: {CALL}")
    assert h.cli_message.endswith(f"Add to the command:\n  {CLI_CALL}")
    assert "columns=" not in h.cli_message
    # describe() and df.cleanlist.mapping() show it
    text = _lookalikes().cleanlist.mapping().describe()
    assert f"hint: {h.message}" in text
    assert "hint" not in m.describe(hint=False)
    # the call it gives fixes it
    fixed = map_contacts(_lookalikes(), columns=eval(CALL.removeprefix("columns=")))
    assert fixed.valid.all() and fixed.hint() is None


def test_the_hint_needs_over_a_third_of_the_rows() -> None:
    df = _lookalikes(9)
    df["Firma"] = ["Acme"] * 6 + [None] * 3  # mapped: 3 of 9 rows skipped, a third
    assert map_contacts(df).hint() is None
    df.loc[5, "Firma"] = None  # 4 of 9
    h = map_contacts(df).hint()
    assert h is not None and h.skipped == (("company_domain or company_name", 4),)
    # only a field the mapping has no column for is offered (company_name has 'Firma')
    assert dict(h.candidates) == {"company_domain": ("Web (alt)",)}
    assert h.call == "columns={'company_domain': 'Web (alt)'}"
    # a column with no value in the skipped rows would not help: not named
    df.loc[5:, "Web (alt)"] = None
    assert map_contacts(df).hint() is None
    # the rows a run considers (where=): the hint counts those only
    df.loc[5:, "Web (alt)"] = "acme.de"
    assert map_contacts(df).hint(rows=np.arange(9) < 6) is None
    assert map_contacts(df).hint(rows=np.arange(9) >= 4) is not None


def test_the_hint_keeps_the_callers_columns_and_never_offers_an_ignored_field() -> None:
    df = _lookalikes().rename(columns={"Vorname": "Given (DE)"})
    h = map_contacts(df, columns={"first_name": "Given (DE)"}).hint()
    assert h is not None
    assert h.call == "columns={'first_name': 'Given (DE)', " + CALL.removeprefix("columns={")
    assert h.cli_call == CLI_CALL  # the command keeps its own -c options
    h = map_contacts(_lookalikes(), columns={"company_name": None}).hint()
    assert h is not None and dict(h.candidates) == {"company_domain": ("Web (alt)",)}


def test_columns_are_also_judged_by_their_values() -> None:
    n = 6
    df = pd.DataFrame(
        {
            "Vorname": ["Ada"] * n,
            "Nachname": [f"L{i}" for i in range(n)],
            "Spalte 7": [f"linkedin.com/in/ada-{i}" for i in range(n)],
            "Spalte 8": [f"ada{i}@acme{i}.io" for i in range(n)],
            "Spalte 9": ["ada@gmail.com"] * n,  # free-mail gives no company domain
        }
    )
    h = map_contacts(df).hint()
    assert h is not None
    assert dict(h.candidates) == {"email": ("Spalte 8",), "linkedin_url": ("Spalte 7",)}
    assert h.call == "columns={'email': 'Spalte 8', 'linkedin_url': 'Spalte 7'}"


def test_a_german_name_column_next_to_vorname_is_offered_as_the_last_name() -> None:
    # German forms: "Name, Vorname", Name being the surname; a bare Name is a full name as
    # in English, so it is not used when there is a first name: the hint says so
    df = pd.DataFrame({"Name": ["Lovelace", "Hopper"], "Vorname": ["Ada", "Grace"],
                       "Firma": ["A", "B"]})
    m = map_contacts(df)
    assert "full_name" not in m.mapping and not m.valid.any()
    h = m.hint()
    assert h is not None and h.call == "columns={'last_name': 'Name'}"
    assert h.skipped == (("last_name", 2),)


def test_the_hint_reads_a_sample_of_the_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    df = _lookalikes(50_000)
    seen: list[int] = []
    real = mp._value_kind

    def spy(texts: list[str]) -> tuple[int | None, bool]:
        seen.append(len(texts))
        return real(texts)

    monkeypatch.setattr(mp, "_value_kind", spy)
    h = map_contacts(df).hint()
    assert h is not None and h.call == CALL
    assert seen and max(seen) <= mp.HINT_SAMPLE


def test_estimate_text_and_html_show_the_hint(client: clp.Client) -> None:
    est = _lookalikes().cleanlist.estimate(client=client)
    assert est.hint is not None and est.counts["invalid"] == 12
    text = repr(est)
    assert est.hint.summary.split(".")[0] in " ".join(text.split())
    assert any(line.split() == ["fix", *CALL.split()] for line in text.splitlines()), text
    assert html.escape(CALL) in est._repr_html_()
    assert html.escape(est.hint.summary) in est._repr_html_()
    assert CLI_CALL in est.text(cli=True) and "columns=" not in est.text(cli=True)
    # a where= that keeps only a few rows: a third of them is the threshold
    est = _lookalikes().cleanlist.estimate(client=client, where=np.arange(12) < 2)
    assert est.hint is not None and est.hint.rows == 2


def test_the_run_warns_with_the_hint(client: clp.Client) -> None:
    df = _lookalikes()
    with pytest.warns(CleanlistWarning) as rec:
        out = df.cleanlist.enrich(client=client, progress=False)
    assert (out["cl_status"] == "skipped").all()
    [warning] = [w.message for w in rec if isinstance(w.message, CleanlistWarning)]
    msg = str(warning)
    assert "12 of 12 rows are skipped for a missing company_domain or company_name" in msg
    assert msg.endswith(f"Map them with: {CALL}")
    assert warning.cli_message.endswith(f"Add to the command:\n  {CLI_CALL}")
    # errors="ignore" stays quiet; once mapped, nothing to say
    with warnings.catch_warnings():
        warnings.simplefilter("error", CleanlistWarning)
        df.cleanlist.enrich(client=client, progress=False, errors="ignore")
        out = df.cleanlist.enrich(
            client=client, progress=False, columns=eval(CALL.removeprefix("columns="))
        )
    assert (out["cl_status"] != "skipped").all()


def test_the_command_line_says_the_hint_in_its_own_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CLEANLIST_API_KEY", raising=False)
    src = tmp_path / "leads.csv"
    _lookalikes().to_csv(src, index=False, sep=";")
    assert main(["estimate", str(src)]) == 0
    out = capsys.readouterr().out
    assert "12 of 12 rows are skipped for a missing company_domain or company_name" in " ".join(
        out.split()
    )
    assert any(line.split() == ["fix", "add", *CLI_CALL.split()] for line in out.splitlines())
    assert "columns=" not in out
    # the run's warning too
    assert main(["enrich", str(src), "--sandbox", "--no-progress", "-o", str(tmp_path / "o.csv")]
                ) == 0
    err = capsys.readouterr().err
    assert "Add to the command:" in " ".join(err.split()) and "columns=" not in err
    assert CLI_CALL in [line.strip() for line in err.splitlines()]  # one line: copyable
