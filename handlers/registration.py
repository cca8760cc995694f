"""Registration flow: /register, the form step by step, the summary, submit, waitlist offers,
/status with cancel and move.

Entry points: `setup(application)`; handlers `cmd_register`, `on_start_level`, `on_input`,
`on_choice`, `on_edit`, `on_submit`, `on_join_waitlist`, `cmd_status`, `on_cancel_ask`,
`on_cancel_confirm`, `on_move_ask`, `on_move_to`, `on_move_confirm`, `on_offer`.
Callback data: `reg:start:<level>`, `reg:c:<step>:<value>`, `reg:edit:<field>`, `reg:submit`,
`reg:waitlist`, `reg:cancel:<id>`, `reg:cancel_yes:<id>`, `reg:move:<id>`,
`reg:move_to:<id>:<session>` (asks), `reg:move_yes:<id>:<session>` (moves),
`reg:offer:accept|decline:<id>`; `fix:<id>` ("Request a correction" of a frozen identity)
is answered by `handlers.corrections`. Ids in buttons are only hints: the service checks
that the registration belongs to the presser.
"""

from __future__ import annotations

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, filters

from bot.domain.catalog import Catalog
from bot.i18n import Translator
from bot.services.errors import (
    AlreadyRegistered,
    CancellationClosed,
    FormIncomplete,
    IdentityFrozen,
    InvalidAnswer,
    InvalidState,
    NotEligible,
    NotFound,
    OfferExpired,
    RegistrationClosed,
    RegistrationNotOpen,
    ServiceError,
    SessionFull,
    StaleStep,
)
from bot.services.identity import IDENTITY
from bot.services.registration import LevelPassed, RegistrationView, RetakePlan, SessionOption
from bot.services.registration_form import FLOW, NONE, SUMMARY, Input, Step, Summary
from handlers.callbacks import ID, WORD, Button, one_of
from handlers.context import ExamContext
from handlers.render import (
    answer_error,
    edit_message,
    refusals,
    rows,
    send_offer,
    stale_button,
    state_label,
    ticket_availability,
    ticket_button,
)
from handlers.standing import standing_lines

MENU_REGISTER = Button("menu:register")
MENU_STATUS = Button("menu:status")
START = Button("reg:start", WORD)  # reg:start:<level>
CHOICE = Button("reg:c", WORD, WORD)  # reg:c:<step>:<value>
EDIT = Button("reg:edit", WORD)  # reg:edit:<field>
SUBMIT = Button("reg:submit")
WAITLIST = Button("reg:waitlist")
CANCEL = Button("reg:cancel", ID)  # reg:cancel:<registration id>: asks
CANCEL_YES = Button("reg:cancel_yes", ID)  # … cancels
MOVE = Button("reg:move", ID)  # reg:move:<registration id>: the sessions to move to
MOVE_TO = Button("reg:move_to", ID, WORD)  # reg:move_to:<id>:<session>: asks
MOVE_YES = Button("reg:move_yes", ID, WORD)  # … moves
OFFER = Button("reg:offer", one_of("accept", "decline"), ID)  # reg:offer:accept|decline:<id>

EDIT_FIELDS = (
    "full_name",
    "id_number",
    "phone",
    "email",
    "school",
    "work_unit",
    "direction",
    "session",
    "photo",
)


def field_label(tr: Translator, field: str) -> str:
    return {
        "full_name": tr.gettext("Name"),
        "id_type": tr.gettext("ID document"),
        "id_number": tr.gettext("ID number"),
        "gender": tr.gettext("Gender"),
        "birth_date": tr.gettext("Date of birth"),
        "phone": tr.gettext("Mobile phone"),
        "email": tr.gettext("E-mail"),
        "school": tr.gettext("School"),
        "work_unit": tr.gettext("Work unit"),
        "direction": tr.gettext("Direction"),
        "session": tr.gettext("Exam session"),
        "photo": tr.gettext("Photo"),
        "prior_certificate": tr.gettext("Certificate number"),
    }[field]


def _session_line(tr: Translator, catalog: Catalog, s: SessionOption) -> str:
    if s.availability == "full":
        seats = tr.gettext("full: waitlist")
    else:
        seats = tr.ngettext("{count} seat left", "{count} seats left", s.seats_left)
    times = tr.join(
        tr.gettext(
            "{component} {start}-{end}, {room}",
            component=catalog.component(c.component).name.get(tr.language),
            start=tr.time(c.starts_at, s.timezone),
            end=tr.time(c.ends_at, s.timezone),
            room=c.room.get(tr.language) or c.room.get("en", ""),
        )
        for c in s.components
    )
    return tr.gettext(
        "{date}: {seats}\n   {times}", date=tr.date(s.exam_date), seats=seats, times=times
    )


def step_text(tr: Translator, catalog: Catalog, step: Step) -> str:
    level = catalog.level(step.level).name.get(tr.language) if step.level else ""
    if step.step == "session":
        if not step.sessions and "opens_at" in step.extra:
            return tr.gettext(
                "No session for {level} is open for registration right now. "
                "Registration for the exam on {exam_date} opens on {opens_at}: "
                "come back then with /register.",
                level=level,
                exam_date=tr.date(step.extra["exam_date"]),
                opens_at=tr.datetime(step.extra["opens_at"], step.extra["timezone"]),
            )
        if not step.sessions:
            return tr.gettext(
                "No session for {level} is open for registration right now. "
                "I will show new sessions here when registration opens: "
                "check again with /register later.",
                level=level,
            )
        lines = "\n".join(_session_line(tr, catalog, s) for s in step.sessions)
        return tr.gettext(
            "Choose the exam session for {level}:\n{sessions}", level=level, sessions=lines
        )
    if step.step == SUMMARY and step.summary is not None:
        return summary_text(tr, catalog, step.summary)
    prompts = {
        "full_name": tr.gettext(
            "Registration for {level}. Your full name, exactly as on your ID document:",
            level=level,
        ),
        "id_type": tr.gettext("Which ID document will you bring to the exam?"),
        "id_number": tr.gettext(
            "Type your ID document number (resident ID: 18 characters; the last may be X):"
        ),
        "gender": tr.gettext("Your gender, as in your passport:"),
        "birth_date": tr.gettext("Your date of birth, e.g. 1998-05-20:"),
        "phone": tr.gettext(
            "Your mobile phone number: press the button below to share it, or type it."
        ),
        "email": tr.gettext("Your e-mail address:"),
        "school": tr.gettext("The school or university of your highest education:"),
        "work_unit": tr.gettext(
            "Your employer (work unit), or press the button if you are not employed:"
        ),
        "prior_certificate": tr.gettext(
            "The number of your earlier level certificate (as printed on it):"
        ),
        "direction": tr.gettext("Choose your direction (方向):"),
        "photo": tr.gettext(
            "Last step: send your 2-inch photo on a white background, as a photo (portrait, at "
            "least 295×413 pixels)."
        ),
    }
    return prompts[step.step]


def step_keyboard(
    tr: Translator, catalog: Catalog, step: Step
) -> InlineKeyboardMarkup | ReplyKeyboardMarkup | None:
    lang = tr.language
    if step.step == "phone":
        return ReplyKeyboardMarkup(
            [[KeyboardButton(tr.gettext("📱 Share my phone number"), request_contact=True)]],
            resize_keyboard=True,
            one_time_keyboard=True,
        )
    labels = {
        "id_type": {
            "resident_id": tr.gettext("PRC resident ID card"),
            "passport": tr.gettext("Passport (foreign candidates)"),
        },
        "gender": {"male": tr.gettext("Male"), "female": tr.gettext("Female")},
        "work_unit": {NONE: tr.gettext("Not employed")},
    }
    if step.step in labels:
        buttons = [
            InlineKeyboardButton(labels[step.step][o], callback_data=f"reg:c:{step.step}:{o}")
            for o in step.options
        ]
        return InlineKeyboardMarkup(rows(buttons, 2))
    if step.step == "direction":
        buttons = [
            InlineKeyboardButton(
                catalog.direction(code).name.get(lang), callback_data=f"reg:c:direction:{code}"
            )
            for code in step.options
        ]
        return InlineKeyboardMarkup(rows(buttons, 1))
    if step.step == "session":
        buttons = [
            InlineKeyboardButton(
                tr.date(s.exam_date) + ("" if s.availability == "open" else " ⏳"),
                callback_data=f"reg:c:session:{s.code}",
            )
            for s in step.sessions
            if s.availability in ("open", "full")
        ]
        return InlineKeyboardMarkup(rows(buttons, 1)) if buttons else None
    if step.step == SUMMARY:
        frozen = step.summary.frozen_by if step.summary else None
        edits = [
            InlineKeyboardButton(
                tr.gettext("✏️ {field}", field=field_label(tr, f)), callback_data=f"reg:edit:{f}"
            )
            for f in EDIT_FIELDS
            if frozen is None or f not in IDENTITY
        ]
        fix = [[correction_button(tr, frozen)]] if frozen is not None else []
        return InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton(
                        tr.gettext("✅ Submit registration"), callback_data="reg:submit"
                    )
                ],
                *rows(edits, 3),
                *fix,
            ]
        )
    return None


def correction_button(tr: Translator, registration_id: int) -> InlineKeyboardButton:
    """Ask staff to correct a frozen name or ID number (answered by handlers.corrections)."""
    return InlineKeyboardButton(
        tr.gettext("📝 Request a correction"), callback_data=f"fix:{registration_id}"
    )


def major_name(tr: Translator, catalog: Catalog, s: Summary) -> str | None:
    """The major in the reader's language when it is one of the catalogue's, else as typed."""
    for majors in catalog.related_majors.values():
        for major in majors:
            if major.code == s.major_code:
                return major.name.get(tr.language)
    return s.major


def session_when(tr: Translator, s: SessionOption, booked: tuple[str, ...] | None = None) -> str:
    """When a session's exam begins for the candidate, in the session's zone (named): its
    first component, or the first of those `booked` (a retake of one component)."""
    starts = min(
        (c.starts_at for c in s.components if booked is None or c.component in booked),
        default=None,
    )
    if starts is None:
        return tr.date(s.exam_date)
    return tr.datetime(starts, s.timezone)


def summary_text(tr: Translator, catalog: Catalog, s: Summary) -> str:
    lang = tr.language
    dash = "—"
    id_type = {
        "resident_id": tr.gettext("PRC resident ID card"),
        "passport": tr.gettext("Passport (foreign candidates)"),
    }
    gender = {"male": tr.gettext("Male"), "female": tr.gettext("Female")}
    education = catalog.education_level(s.education).name.get(lang) if s.education else dash
    session = s.session or dash
    if s.session_option is not None:
        session = session_when(tr, s.session_option, s.retake.book if s.retake else None)
    text = tr.gettext(
        "Please check your registration:\n"
        "Level: {level}\nName: {name}\nID: {id_type} {id_number}\nGender: {gender}, born {birth}\n"
        "Mobile: {phone}\nE-mail: {email}\n"
        "Education: {education}, {major}, {school} (graduation {graduation})\n"
        "Work unit: {work_unit}\nEarlier certificate: {certificate}\nDirection: {direction}\n"
        "Session: {session}\nPhoto: {photo}\n\n"
        "Submit it, or change any field below.",
        level=catalog.level(s.level).name.get(lang),
        name=s.full_name or dash,
        id_type=id_type.get(s.id_type or "", dash),
        id_number=s.id_masked or dash,
        gender=gender.get(s.gender or "", dash),
        birth=tr.date(s.birth_date) if s.birth_date else dash,
        phone=s.phone or dash,
        email=s.email or dash,
        education=education,
        major=major_name(tr, catalog, s) or dash,
        school=s.school or dash,
        graduation=s.graduation_date or dash,
        work_unit=tr.gettext("Not employed") if s.work_unit == NONE else (s.work_unit or dash),
        certificate=s.prior_certificate or dash,
        direction=catalog.direction(s.direction).name.get(lang) if s.direction else dash,
        session=session,
        photo=tr.gettext("received") if s.has_photo else dash,
    )
    if s.retake is not None:
        text = "\n\n".join((text, retake_text(tr, catalog, s.retake)))
    if s.frozen_by is None:
        return text
    return tr.gettext(
        "{summary}\n\nYour name and ID number are locked: a registration of yours is paid or "
        "its payment is being checked. If they are wrong, request a correction from the staff.",
        summary=text,
    )


def retake_text(tr: Translator, catalog: Catalog, plan: RetakePlan) -> str:
    """What a retake books at the chosen session, and which passes carry over to it."""

    def name(code: str) -> str:
        return catalog.component(code).name.get(tr.language)

    lines = [
        tr.gettext(
            "🔁 You passed {component} on {date}; it carries over until {until}.",
            component=name(p.component),
            date=tr.date(p.passed_on),
            until=tr.date(p.until),
        )
        for p in plan.carried
    ]
    lines += [
        tr.gettext(
            "Your pass in {component} on {date} counts only until {until}, before this "
            "session: you sit it again.",
            component=name(p.component),
            date=tr.date(p.passed_on),
            until=tr.date(p.until),
        )
        for p in plan.expired
    ]
    booked = tr.join(name(c) for c in plan.book)
    if plan.carried:
        lines.append(tr.gettext("You book only: {components}.", components=booked))
    else:
        lines.append(tr.gettext("You book: {components}.", components=booked))
    return "\n".join(lines)


def form_error(tr: Translator, exc: InvalidAnswer) -> str:
    hints = {
        "name_characters": tr.gettext(
            "Please type your name with letters only, as on your ID document."
        ),
        "id_length": tr.gettext(
            "A resident ID number has 18 characters. Please check it and type it again."
        ),
        "id_legacy_15": tr.gettext(
            "That is an old 15-digit number. Please type the 18-character number on your "
            "current ID card."
        ),
        "id_characters": tr.gettext(
            "A resident ID number has 17 digits and then a digit or X. Please type it again."
        ),
        "id_birth_date": tr.gettext(
            "The birth date inside this ID number is not a real date. Please check the number."
        ),
        "id_future_birth_date": tr.gettext(
            "The birth date inside this ID number is in the future. Please check the number."
        ),
        "id_checksum": tr.gettext(
            "This ID number's check character does not match (a typo?). "
            "Please check it and type it again."
        ),
        "passport_length": tr.gettext(
            "A passport number has 5 to 20 letters and digits. Please type it again."
        ),
        "passport_characters": tr.gettext(
            "A passport number has only letters and digits. Please type it again."
        ),
        "id_in_use": tr.gettext(
            "This ID number is already registered with another Telegram account. "
            "If that is yours or a mistake, please contact the exam centre staff."
        ),
        "contact_not_own": tr.gettext(
            "Please share your own phone number (the button below), or type it."
        ),
        "phone_expected": tr.gettext(
            "Please share your phone number with the button below, or type it."
        ),
        "phone_invalid": tr.gettext(
            "That does not look like a valid phone number. Please type it like 13800138000."
        ),
        "email_invalid": tr.gettext(
            "That does not look like an e-mail address. Please type it like name@example.com."
        ),
        "photo_expected": tr.gettext("Please send your photo as a picture."),
        "certificate_number": tr.gettext(
            "That does not look like a certificate number: letters, digits and dashes only, 6 "
            "to 40 of them."
        ),
        "photo_not_image": tr.gettext(
            "That file is not an image. Please send your photo as a picture (JPG or PNG)."
        ),
        "photo_too_large": tr.gettext(
            "The photo is larger than {limit} MB. Please send a smaller one.",
            limit=exc.params.get("limit_mb", 5),
        ),
        "photo_too_small": tr.gettext(
            "The photo is too small: it must be at least {width}×{height} pixels. "
            "Please send a sharper one.",
            width=exc.params.get("width", 295),
            height=exc.params.get("height", 413),
        ),
        "photo_not_portrait": tr.gettext(
            "The photo must be upright (taller than wide). Please send a portrait photo."
        ),
        "photo_landscape": tr.gettext(
            "This photo is landscape (wider than tall). Please send an upright photo, taller "
            "than wide, like a passport photo."
        ),
    }
    return hints.get(exc.reason) or answer_error(tr, exc)


async def show_step(update: Update, context: ExamContext, step: Step) -> None:
    tr = context.tr
    catalog = await context.services.catalog.current()
    markup = step_keyboard(tr, catalog, step)
    await update.effective_message.reply_text(step_text(tr, catalog, step), reply_markup=markup)


async def cmd_register(update: Update, context: ExamContext) -> None:
    """Resume the form, or start it for the level the candidate is eligible for."""
    if update.callback_query:
        await update.callback_query.answer()
    services, tr = context.services, context.tr
    current = await services.registration_form.current(update.effective_user.id)
    if current is not None:
        await show_step(update, context, current)
        return
    catalog = await services.catalog.current()
    allowed = await services.registration_form.open_levels(update.effective_user.id)
    if not allowed:
        await update.effective_message.reply_text(
            tr.gettext("First let us check which level you may take."),
            reply_markup=InlineKeyboardMarkup(
                [
                    [
                        InlineKeyboardButton(
                            tr.gettext("✅ Check my eligibility"), callback_data="elig:start"
                        )
                    ]
                ]
            ),
        )
        return
    buttons = [
        InlineKeyboardButton(
            catalog.level(code).name.get(tr.language), callback_data=f"reg:start:{code}"
        )
        for code in allowed
    ]
    await update.effective_message.reply_text(
        tr.gettext("Which level do you want to register for?"),
        reply_markup=InlineKeyboardMarkup([buttons]),
    )


def _check_eligibility_first(tr: Translator, _exc: ServiceError) -> str:
    return tr.gettext("Check your eligibility for this level first: /eligibility")


async def on_start_level(update: Update, context: ExamContext) -> None:
    """`reg:start:<level>`: open the form for that level."""
    query = update.callback_query
    parsed = START.parse(query.data)
    if parsed is None:
        await stale_button(query, context.tr)
        return
    explain = {(NotEligible, InvalidAnswer): _check_eligibility_first}
    try:
        async with refusals(update, context.tr, explain) as refused:
            step = await context.services.registration_form.start(
                update.effective_user.id, parsed[0]
            )
    except AlreadyRegistered as exc:  # registered for this level: show that registration
        await show_registration(update, context, exc.registration_id)
        return
    except LevelPassed as exc:
        await query.answer()
        await update.effective_message.reply_text(level_passed_text(context.tr, exc))
        return
    if refused.error:
        return
    await query.answer()
    await show_step(update, context, step)


def level_passed_text(tr: Translator, exc: LevelPassed) -> str:
    return tr.gettext(
        "You passed this level on {date}: there is nothing to register for. See /results.",
        date=tr.date(exc.passed_at.date()),
    )


async def show_registration(
    update: Update, context: ExamContext, registration_id: int | None
) -> None:
    """One registration as /status shows it (all of them when the id is unknown)."""
    if registration_id is None:
        await cmd_status(update, context)
        return
    if update.callback_query:
        await update.callback_query.answer()
    r = await context.services.registration.get_for_candidate(
        update.effective_user.id, registration_id
    )
    text, markup = registration_card(context.tr, await context.services.catalog.current(), r)
    await update.effective_message.reply_text(
        context.tr.gettext(
            "You are already registered for this level:\n{registration}", registration=text
        ),
        reply_markup=markup,
    )


def frozen_text(tr: Translator, _exc: IdentityFrozen) -> str:
    return tr.gettext(
        "Your name and ID number cannot be changed here any more: a registration of yours is "
        "paid or its payment is being checked. If they are wrong, request a correction from "
        "the staff with the button below."
    )


async def explain_frozen(update: Update, context: ExamContext, exc: IdentityFrozen) -> None:
    """Why an identity field cannot be changed, with the way to get it corrected."""
    if update.callback_query:
        await update.callback_query.answer()
    await update.effective_message.reply_text(
        frozen_text(context.tr, exc),
        reply_markup=InlineKeyboardMarkup([[correction_button(context.tr, exc.registration_id)]]),
    )


async def on_choice(update: Update, context: ExamContext) -> None:
    """`reg:c:<step>:<value>`: a choice button of the form."""
    parsed = CHOICE.parse(update.callback_query.data)
    if parsed is None:
        await stale_button(update.callback_query, context.tr)
        return
    step, value = parsed
    await _answer(update, context, step, Input(choice=value))


async def on_input(update: Update, context: ExamContext) -> None:
    """Typed text, a shared contact, a photo or a file while the form is open."""
    message = update.effective_message
    step = context.candidate.step if context.candidate else ""
    photo = None
    if message.photo:
        largest = message.photo[-1]
        photo = {
            "file_id": largest.file_id,
            "file_unique_id": largest.file_unique_id,
            "width": largest.width,
            "height": largest.height,
            "file_size": largest.file_size,
            "mime_type": "image/jpeg",
        }
    elif message.document:
        doc = message.document
        photo = {
            "file_id": doc.file_id,
            "file_unique_id": doc.file_unique_id,
            "width": None,
            "height": None,
            "file_size": doc.file_size,
            "mime_type": doc.mime_type or "application/octet-stream",
        }
    contact = message.contact
    value = Input(
        text=message.text,
        photo=photo,
        contact_phone=contact.phone_number if contact else None,
        contact_is_own=bool(contact and contact.user_id == update.effective_user.id),
    )
    await _answer(update, context, step or "", value)


def _continue_hint(tr: Translator, _exc: StaleStep) -> str:
    return tr.gettext("Send /register to continue your registration.")


async def _answer(update: Update, context: ExamContext, step: str, value: Input) -> None:
    tr = context.tr
    query = update.callback_query
    # An old button: stale; typed text for a step left behind: how to go on; a refused answer:
    # the hint, then the current step again.
    explain = {StaleStep: _continue_hint, InvalidAnswer: form_error}
    try:
        async with refusals(update, tr, explain, alert=False) as refused:
            result = await context.services.registration_form.answer(
                update.effective_user.id, step, value
            )
    except IdentityFrozen as exc:
        await explain_frozen(update, context, exc)
        return
    if isinstance(refused.error, InvalidAnswer):
        current = await context.services.registration_form.current(update.effective_user.id)
        if current is not None:
            await show_step(update, context, current)
    if refused.error:
        return
    if query:
        await query.answer()
        await edit_message(query)
    elif step == "phone":
        await update.effective_message.reply_text(
            tr.gettext("Phone number saved."), reply_markup=ReplyKeyboardRemove()
        )
    await show_step(update, context, result)


async def on_edit(update: Update, context: ExamContext) -> None:
    """`reg:edit:<field>` from the summary."""
    query = update.callback_query
    parsed = EDIT.parse(query.data)
    if parsed is None:
        await stale_button(query, context.tr)
        return
    try:
        async with refusals(update, context.tr, stale=(StaleStep, InvalidAnswer)) as refused:
            step = await context.services.registration_form.edit(
                update.effective_user.id, parsed[0]
            )
    except IdentityFrozen as exc:
        await explain_frozen(update, context, exc)
        return
    if refused.error:
        return
    await query.answer()
    await show_step(update, context, step)


async def on_submit(update: Update, context: ExamContext, *, join_waitlist: bool = False) -> None:
    """`reg:submit`: take the seat (a double tap registers once)."""
    query = update.callback_query
    tr = context.tr
    try:
        result = await context.services.registration_form.submit(
            update.effective_user.id, join_waitlist=join_waitlist
        )
    except StaleStep:
        await query.answer(
            tr.gettext("This registration was already submitted. See /status."), show_alert=True
        )
        return
    except FormIncomplete as exc:  # e.g. the session was being changed: ask for it again
        await query.answer()
        await update.effective_message.reply_text(
            tr.gettext(
                "Not submitted yet: {fields} still missing.",
                fields=tr.join(field_label(tr, f) for f in exc.missing if f != SUMMARY),
            )
        )
        current = await context.services.registration_form.current(update.effective_user.id)
        if current is not None:
            await show_step(update, context, current)
        return
    except NotEligible:
        await query.answer()
        await update.effective_message.reply_text(
            tr.gettext(
                "Your eligibility for this level is no longer confirmed, so I cannot submit. "
                "See /eligibility."
            )
        )
        return
    except SessionFull as exc:
        await query.answer()
        await update.effective_message.reply_text(
            tr.ngettext(
                "This session is full. You can join its waitlist ({count} person is waiting "
                "before you) or choose another session.",
                "This session is full. You can join its waitlist ({count} people are waiting "
                "before you) or choose another session.",
                exc.waitlist_length,
            ),
            reply_markup=InlineKeyboardMarkup(
                [
                    [
                        InlineKeyboardButton(
                            tr.gettext("⏳ Join the waitlist"), callback_data="reg:waitlist"
                        )
                    ],
                    [
                        InlineKeyboardButton(
                            tr.gettext("📅 Choose another session"),
                            callback_data="reg:edit:session",
                        )
                    ],
                ]
            ),
        )
        return
    except (AlreadyRegistered, RegistrationClosed, RegistrationNotOpen, ServiceError) as exc:
        await query.answer()
        markup = None
        if isinstance(exc, RegistrationClosed | RegistrationNotOpen):
            markup = InlineKeyboardMarkup(
                [
                    [
                        InlineKeyboardButton(
                            tr.gettext("📅 Choose another session"),
                            callback_data="reg:edit:session",
                        )
                    ]
                ]
            )
        await update.effective_message.reply_text(registration_error(tr, exc), reply_markup=markup)
        return
    await query.answer()
    await edit_message(query)
    await update.effective_message.reply_text(
        submitted_text(tr, await context.services.catalog.current(), result.registration)
    )
    if result.seat_taken:  # the fee, the deadline and how to pay
        await send_offer(update, context, result.registration.id)


async def on_join_waitlist(update: Update, context: ExamContext) -> None:
    """`reg:waitlist`: the session filled up; take a place in its line."""
    await on_submit(update, context, join_waitlist=True)


def registration_error(tr: Translator, exc: Exception) -> str:
    """Why a registration action was refused (times with no session at hand: the site's zone)."""
    if isinstance(exc, LevelPassed):
        return level_passed_text(tr, exc)
    if isinstance(exc, AlreadyRegistered):
        return tr.gettext(
            "You already have a registration for this level or session. See /status."
        )
    if isinstance(exc, RegistrationClosed) and exc.next_session_code:
        return tr.gettext(
            "Registration for this session has closed. Session {session} is open: choose it with "
            "📅 Choose another session.",
            session=exc.next_session_code,
        )
    if isinstance(exc, RegistrationClosed):
        return tr.gettext(
            "Registration for this session has closed, and no other session of this level "
            "is open now."
        )
    if isinstance(exc, RegistrationNotOpen):
        return tr.gettext(
            "Registration for this session opens on {opens_at}.",
            opens_at=tr.datetime(exc.opens_at, tr.zone),
        )
    if isinstance(exc, CancellationClosed):
        return tr.gettext(
            "The cancellation deadline of this session has passed. Please contact the staff."
        )
    if isinstance(exc, InvalidState) and exc.state in ("paid", "payment_review"):
        return tr.gettext(
            "A paid registration (or one whose payment is being checked) is cancelled by the exam "
            "centre, which also arranges the refund. Please contact the staff."
        )
    if isinstance(exc, OfferExpired):
        return tr.gettext("This offer has expired and the seat went to the next person in line.")
    if isinstance(exc, SessionFull):
        return tr.gettext("That session has no free seat. Choose another one.")
    return tr.gettext("This action is not possible for this registration any more. See /status.")


def submitted_text(tr: Translator, catalog: Catalog, r: RegistrationView) -> str:
    level = catalog.level(r.level_code).name.get(tr.language)
    if r.state == "waitlisted":
        return tr.gettext(
            "⏳ You are number {position} on the waitlist of session {session} ({level}). "
            "If a seat frees up, I will offer it to you here and hold it for you for a while. "
            "Your reference: {reference}.",
            position=r.waitlist_position or 0,
            session=r.session_code,
            level=level,
            reference=r.reference,
        )
    return tr.gettext(
        "✅ Registered for {level}, exam on {date} (session {session}). "
        "Your reference: {reference}.\n"
        "Next: pay the fee by {due} (how to pay is below). See /status any time.",
        level=level,
        date=tr.date(r.exam_date),
        session=r.session_code,
        reference=r.reference,
        due=tr.datetime(r.payment_due_at, r.timezone),
    )


async def cmd_status(update: Update, context: ExamContext) -> None:
    """Each registration: state, next step, deadline; cancel and move buttons."""
    if update.callback_query:
        await update.callback_query.answer()
    tr = context.tr
    catalog = await context.services.catalog.current()
    registrations = await context.services.registration.list_for_candidate(
        update.effective_user.id
    )
    if not registrations:
        await update.effective_message.reply_text(
            tr.gettext("You have no registrations yet. Start with /register.")
        )
        return
    # Results and certificate, per card; a sitting whose results are out is over.
    standings = await context.services.standing.for_candidate(update.effective_user.id)
    for r in registrations:
        standing = standings.get(r.id)
        text, markup = registration_card(
            tr, catalog, r, sat=standing is not None and bool(standing.results)
        )
        lines = standing_lines(tr, standing) if standing is not None else []
        await update.effective_message.reply_text("\n".join([text, *lines]), reply_markup=markup)


def registration_card(
    tr: Translator, catalog: Catalog, r: RegistrationView, *, sat: bool = False
) -> tuple[str, InlineKeyboardMarkup | None]:
    """One registration: state, next step, deadline; its pay, ticket, move, cancel buttons.
    `sat`: its results are released, so the sitting is over (no ticket to fetch)."""
    level = catalog.level(r.level_code).name.get(tr.language)
    ticket = r.state == "paid" and not sat
    lines = [
        tr.gettext(
            "{level}, session {session} ({date})",
            level=level,
            session=r.session_code,
            date=tr.date(r.exam_date),
        ),
        tr.gettext(
            "Reference: {reference}. State: {state}.",
            reference=r.reference,
            state=state_label(tr, "completed" if sat and r.state == "paid" else r.state),
        ),
    ]
    if r.components and len(r.components) < len(catalog.components):
        lines.append(
            tr.gettext(
                "Retake: {components} only (your other results carry over).",
                components=tr.join(
                    catalog.component(c).name.get(tr.language) for c in r.components
                ),
            )
        )
    if r.state == "waitlisted" and r.waitlist_position:
        lines.append(tr.gettext("Your place in line: {position}.", position=r.waitlist_position))
    if r.state == "offered" and r.offer_expires_at:
        lines.append(
            tr.gettext(
                "The seat is held for you until {until}.",
                until=tr.datetime(r.offer_expires_at, r.timezone),
            )
        )
    if r.state in ("submitted", "awaiting_payment"):
        lines.append(
            tr.gettext("Payment due by {due}.", due=tr.datetime(r.payment_due_at, r.timezone))
        )
    if ticket:
        lines.append(ticket_availability(tr, r.tickets_from_at, r.timezone))
    if r.can_cancel:
        lines.append(
            tr.gettext(
                "You can cancel or change the session until {cutoff}.",
                cutoff=tr.datetime(r.cancellation_cutoff_at, r.timezone),
            )
        )
    buttons = []
    if r.state == "offered":
        buttons.append(
            InlineKeyboardButton(
                tr.gettext("✅ Take the seat"), callback_data=f"reg:offer:accept:{r.id}"
            )
        )
    if r.state in ("submitted", "awaiting_payment"):
        buttons.append(InlineKeyboardButton(tr.gettext("💳 Pay"), callback_data=f"pay:{r.id}"))
    if ticket:
        buttons.append(ticket_button(tr, r.id))
    if r.can_move:
        buttons.append(
            InlineKeyboardButton(tr.gettext("📅 Change session"), callback_data=f"reg:move:{r.id}")
        )
    if r.can_cancel:
        buttons.append(
            InlineKeyboardButton(tr.gettext("✖️ Cancel"), callback_data=f"reg:cancel:{r.id}")
        )
    keyboard = [buttons] if buttons else []
    if r.identity_frozen:  # name and ID number: corrected by staff only
        keyboard.append([correction_button(tr, r.id)])
    return "\n".join(lines), InlineKeyboardMarkup(keyboard) if keyboard else None


async def on_cancel_ask(update: Update, context: ExamContext) -> None:
    """`reg:cancel:<id>`: ask for confirmation first."""
    query, tr = update.callback_query, context.tr
    rid = CANCEL.parse_one(query.data)
    if rid is None:
        await stale_button(query, tr)
        return
    async with refusals(update, tr) as refused:
        r = await context.services.registration.get_for_candidate(update.effective_user.id, rid)
    if refused.error:
        return
    await query.answer()
    await update.effective_message.reply_text(
        tr.gettext(
            "Cancel your registration {reference} (session {session})? "
            "Your seat goes to the next person in line.",
            reference=r.reference,
            session=r.session_code,
        ),
        reply_markup=InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton(
                        tr.gettext("Yes, cancel it"), callback_data=f"reg:cancel_yes:{r.id}"
                    ),
                    InlineKeyboardButton(tr.gettext("No, keep it"), callback_data="menu:status"),
                ]
            ]
        ),
    )


async def on_cancel_confirm(update: Update, context: ExamContext) -> None:
    """`reg:cancel_yes:<id>`: cancel; the seat passes to the waitlist."""
    query, tr = update.callback_query, context.tr
    rid = CANCEL_YES.parse_one(query.data)
    if rid is None:
        await stale_button(query, tr)
        return
    explain = {(CancellationClosed, InvalidState): registration_error}
    async with refusals(update, tr, explain, stale=(NotFound,), alert=False) as refused:
        r = await context.services.registration.cancel(update.effective_user.id, rid)
    if refused.error:
        return
    await query.answer()
    await edit_message(
        query, tr.gettext("Registration {reference} is cancelled.", reference=r.reference)
    )


def move_choices_text(
    tr: Translator, free: list[SessionOption], later: list[SessionOption]
) -> str:
    """What "Change session" says: pick a session with a free seat, and which later sessions
    exist that do not take registrations yet, with the day they start to."""
    upcoming = tr.join(
        tr.gettext(
            "{date} (registration opens {opens_at})",
            date=tr.date(s.exam_date),
            opens_at=tr.datetime(s.registration_opens_at, s.timezone),
        )
        for s in later
    )
    if free and later:
        return tr.gettext(
            "Move to which session? Later sessions, not open for registration yet: {sessions}.",
            sessions=upcoming,
        )
    if free:
        return tr.gettext("Move to which session?")
    if later:
        return tr.gettext(
            "No other session of this level is open for registration right now. Later "
            "sessions: {sessions}. Come back to 📅 Change session once registration opens.",
            sessions=upcoming,
        )
    return tr.gettext("No other session of this level has a free seat right now.")


async def on_move_ask(update: Update, context: ExamContext) -> None:
    """`reg:move:<id>`: the other sessions of the level this candidate can take."""
    query, tr = update.callback_query, context.tr
    rid = MOVE.parse_one(query.data)
    if rid is None:
        await stale_button(query, tr)
        return
    services, uid = context.services, update.effective_user.id
    async with refusals(update, tr) as refused:
        r = await services.registration.get_for_candidate(uid, rid)
    if refused.error:
        return
    await query.answer()
    others = [
        s
        for s in await services.registration.list_sessions(
            r.level_code, telegram_id=uid, moving=r.id
        )
        if s.code != r.session_code
    ]
    free = [s for s in others if s.availability == "open"]
    later = [s for s in others if s.availability == "not_yet_open"]
    buttons = [
        [InlineKeyboardButton(tr.date(s.exam_date), callback_data=f"reg:move_to:{r.id}:{s.code}")]
        for s in free
    ]
    await update.effective_message.reply_text(
        move_choices_text(tr, free, later),
        reply_markup=InlineKeyboardMarkup(buttons) if buttons else None,
    )


async def on_move_to(update: Update, context: ExamContext) -> None:
    """`reg:move_to:<id>:<session>`: ask for confirmation first, as cancelling does."""
    query, tr = update.callback_query, context.tr
    parsed = MOVE_TO.parse(query.data)
    if parsed is None:
        await stale_button(query, tr)
        return
    rid, code = parsed
    services = context.services
    async with refusals(update, tr) as refused:
        r = await services.registration.get_for_candidate(update.effective_user.id, rid)
    if refused.error:
        return
    sessions = await services.registration.list_sessions(r.level_code, include_closed=True)
    target = next((s for s in sessions if s.code == code), None)
    if target is None:
        await stale_button(query, tr)
        return
    await query.answer()
    await update.effective_message.reply_text(
        move_question(tr, r, target),
        reply_markup=InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton(
                        tr.gettext("Yes, move it"), callback_data=f"reg:move_yes:{r.id}:{code}"
                    ),
                    InlineKeyboardButton(tr.gettext("No, keep it"), callback_data="menu:status"),
                ]
            ]
        ),
    )


def move_question(tr: Translator, r: RegistrationView, target: SessionOption) -> str:
    params = {
        "reference": r.reference,
        "old": tr.date(r.exam_date),
        "new": session_when(tr, target),
    }
    if r.state == "paid":
        return tr.gettext(
            "Move your registration {reference} from the exam on {old} to the exam on {new}? "
            "Your seat on {old} goes to the next person in line, and an admission ticket "
            "issued for {old} is replaced by a new one for the new session.",
            **params,
        )
    return tr.gettext(
        "Move your registration {reference} from the exam on {old} to the exam on {new}? "
        "Your seat on {old} goes to the next person in line.",
        **params,
    )


async def on_move_confirm(update: Update, context: ExamContext) -> None:
    """`reg:move_yes:<id>:<session>`: move, keeping the registration; the old seat is freed."""
    query, tr = update.callback_query, context.tr
    parsed = MOVE_YES.parse(query.data)
    if parsed is None:
        await stale_button(query, tr)
        return
    rid, code = parsed
    explain = {ServiceError: registration_error}
    async with refusals(update, tr, explain, stale=(NotFound,), alert=False) as refused:
        r = await context.services.registration.move(update.effective_user.id, rid, code)
    if refused.error:
        return
    await query.answer()
    await edit_message(
        query,
        tr.gettext(
            "Done: you are now registered for session {session} ({date}).",
            session=r.session_code,
            date=tr.date(r.exam_date),
        ),
    )


async def on_offer(update: Update, context: ExamContext) -> None:
    """`reg:offer:accept|decline:<id>`: answer a waitlist offer."""
    query, tr = update.callback_query, context.tr
    parsed = OFFER.parse(query.data)
    if parsed is None:
        await stale_button(query, tr)
        return
    accept, rid = parsed[0] == "accept", parsed[1]
    service = context.services.registration
    explain = {ServiceError: registration_error}
    async with refusals(update, tr, explain, stale=(NotFound,), alert=False) as refused:
        answer = service.accept_offer if accept else service.decline_offer
        r = await answer(update.effective_user.id, rid)
    if refused.error:
        return
    await query.answer()
    await edit_message(query)
    if not accept:
        await update.effective_message.reply_text(
            tr.gettext("Understood: the seat goes to the next person in line.")
        )
        return
    await update.effective_message.reply_text(
        submitted_text(tr, await context.services.catalog.current(), r)
    )
    await send_offer(update, context, r.id)  # the seat is theirs: how to pay comes next


async def resume(update: Update, context: ExamContext) -> None:
    """After /start: show the form step the candidate was on."""
    step = await context.services.registration_form.current(update.effective_user.id)
    if step is not None:
        await show_step(update, context, step)


INPUTS = {FLOW: on_input}
RESUMES = {FLOW: resume}


def setup(application: Application) -> None:
    application.add_handler(CommandHandler("register", cmd_register, filters.ChatType.PRIVATE))
    application.add_handler(CommandHandler("status", cmd_status, filters.ChatType.PRIVATE))
    for button, callback in (
        (MENU_REGISTER, cmd_register),
        (MENU_STATUS, cmd_status),
        (START, on_start_level),
        (CHOICE, on_choice),
        (EDIT, on_edit),
        (SUBMIT, on_submit),
        (WAITLIST, on_join_waitlist),
        (CANCEL, on_cancel_ask),
        (CANCEL_YES, on_cancel_confirm),
        (MOVE, on_move_ask),
        (MOVE_TO, on_move_to),
        (MOVE_YES, on_move_confirm),
        (OFFER, on_offer),
    ):
        application.add_handler(CallbackQueryHandler(callback, pattern=button.matches))
