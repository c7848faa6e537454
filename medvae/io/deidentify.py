"""``--deidentify``: DICOM that medvae writes, stripped of the patient's identity before it is saved.

Derived DICOM keeps the source's patient and study, as it must to stay in the patient's record. To share
generated, synthetic or enhanced images instead, every command that writes DICOM takes ``--deidentify``,
which applies DICOM PS3.15 Annex E's Basic Application Level Confidentiality Profile to each dataset:

* `dicognito <https://github.com/blairconrad/dicognito>`_ (maintained, MIT) does the work on the whole dataset,
  nested sequences included (the DICOM SEG's referenced series, its equipment): person names, IDs, addresses,
  institution and station names are replaced by consistent made-up values, UIDs are remapped (the same source UID
  gives the same new UID within one run, so a series stays a series), and dates and times are shifted by one
  offset per run (the profile's Retain Longitudinal Temporal Information with Modified Dates option);
* what dicognito keeps and the profile removes is removed here (:data:`REMOVED`: the patient's age, sex, size,
  weight and comments, admission and episode data, the study's and procedures' descriptions; device serial
  numbers, the SEG's equipment's among them, become a dummy), then blanked where the
  IOD requires the attribute (``PatientSex``, type 2); medvae's own texts (the series description, the
  derivation and the comments that mark an image synthetic) are not the patient's and stay;
* ``PatientIdentityRemoved`` is ``YES`` and ``DeidentificationMethod`` / ``DeidentificationMethodCodeSequence``
  name the profile and option (DCM 113100, 113107).

Pixel data are not inspected: burnt-in text on a source radiograph stays in its pixels.
"""

from __future__ import annotations

#: attributes the Basic Profile removes (X) or empties (Z) that dicognito leaves as they are; each is removed, and
#: emptied instead where it is type 2 in medvae's IODs
REMOVED = ("PatientAge", "PatientSize", "PatientWeight", "PatientComments", "PatientSex", "AdditionalPatientHistory",
           "EthnicGroup", "MedicalAlerts", "Allergies", "SmokingStatus", "PregnancyStatus", "StudyDescription",
           "RequestedProcedureDescription", "PerformedProcedureStepDescription", "AcquisitionComments",
           "ProtocolName", "InstitutionalDepartmentName", "PatientState", "ReasonForStudy",
           "RequestAttributesSequence", "OtherPatientIDsSequence", "ReferencedPatientSequence", "PatientSexNeutered",
           "AdmittingDiagnosesDescription", "AdmissionID", "IssuerOfAdmissionID", "ServiceEpisodeID",
           "ServiceEpisodeDescription", "IssuerOfServiceEpisodeID", "DischargeDiagnosisDescription", "SpecialNeeds",
           "PatientTransportArrangements", "VisitComments", "StudyComments", "IdentifyingComments",
           "PatientBirthTime", "OtherPatientNames", "PatientBirthName", "PatientMotherBirthName")
#: attributes the profile lets be replaced by a dummy (D) where an IOD needs them: the SEG's equipment
DUMMIES = {"DeviceSerialNumber": "0"}
EMPTIED = ("PatientSex",)  # type 2 in the Patient module
METHOD = ["PS3.15 Annex E Basic Application Confidentiality Profile", "Modified Dates Option",
          "medvae --deidentify with dicognito"]  # LO: at most 64 characters each
CODES = (("113100", "Basic Application Confidentiality Profile"),
         ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"))

_anonymizer = None


def deidentify(ds) -> None:
    """De-identify the pydicom dataset ``ds`` in place (see the module docstring). All datasets of one process
    share one anonymizer, so the UIDs and dates of one run's outputs stay consistent with each other."""
    global _anonymizer
    from dicognito.anonymizer import Anonymizer
    from pydicom.dataset import Dataset

    from medvae.io.dicom_header import quiet

    with quiet():
        if _anonymizer is None:
            _anonymizer = Anonymizer()
        ds.walk(_dates_as_text)  # dicognito reads dates and times as text; highdicom sets them as date objects
        _anonymizer.anonymize(ds)
        ds.walk(_remove)
        for keyword in EMPTIED:
            setattr(ds, keyword, "")
        ds.PatientIdentityRemoved = "YES"
        ds.DeidentificationMethod = METHOD
        items = []
        for value, meaning in CODES:
            item = Dataset()
            item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "DCM", meaning
            items.append(item)
        ds.DeidentificationMethodCodeSequence = items


def _dates_as_text(dataset, element) -> None:
    """``Dataset.walk`` callback: a DA, DT or TM value held as a Python date or time becomes its DICOM text."""
    if element.VR in ("DA", "DT", "TM") and element.value not in (None, "") and not isinstance(element.value, str):
        values = element.value if isinstance(element.value, (list, tuple)) or element.VM > 1 else [element.value]
        text = [str(v) for v in values]
        element.value = text if len(text) > 1 else text[0]


def _remove(dataset, element) -> None:
    """``Dataset.walk`` callback: drop the element if the profile removes it."""
    if element.keyword in REMOVED:
        del dataset[element.tag]
    elif element.keyword in DUMMIES:
        element.value = DUMMIES[element.keyword]
