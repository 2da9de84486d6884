; VRAM Keeper's Windows installer (NSIS 3, built on Linux by scripts/package.sh).
;
; Per user by default, into %LOCALAPPDATA%\Programs\VRAM Keeper, with no
; administrator rights; /ALLUSERS (from an elevated prompt) installs into
; Program Files for everyone. /S installs silently with the defaults;
; /NOAUTOSTART leaves out "Start at login"; /D=DIR picks the folder.
; makensis -DVERSION=0.1.0 -DEXE=path\vramkeeper.exe -DICON=path\vramkeeper.ico -DOUTFILE=...

; 64-bit like the program: it runs on 64-bit Windows only, and Wine
; without 32-bit support (Debian's wine64) runs it too.
Target amd64-unicode
SetCompressor /SOLID lzma
RequestExecutionLevel user

!ifndef VERSION
  !define VERSION "0.0.0"
!endif
!define NAME "VRAM Keeper"
!define UNINSTKEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\VRAMKeeper"
; The same value the app's Settings tab writes (app/autostart_windows.go).
!define RUNKEY "Software\Microsoft\Windows\CurrentVersion\Run"
!define RUNVALUE "VRAM Keeper"

Name "${NAME}"
OutFile "${OUTFILE}"
Icon "${ICON}"
UninstallIcon "${ICON}"
BrandingText "${NAME} ${VERSION}"
VIProductVersion "${VERSION}.0"
VIAddVersionKey "ProductName" "${NAME}"
VIAddVersionKey "ProductVersion" "${VERSION}"
VIAddVersionKey "FileVersion" "${VERSION}"
VIAddVersionKey "FileDescription" "${NAME} installer"
VIAddVersionKey "LegalCopyright" "VRAM Keeper authors"

!include "MUI2.nsh"
!include "LogicLib.nsh"
!include "FileFunc.nsh"
!include "x64.nsh"

!define MUI_ICON "${ICON}"
!define MUI_UNICON "${ICON}"
!define MUI_FINISHPAGE_RUN "$INSTDIR\vramkeeper.exe"
!define MUI_FINISHPAGE_RUN_TEXT "Start ${NAME} now"
!insertmacro MUI_PAGE_COMPONENTS
!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_INSTFILES
!insertmacro MUI_PAGE_FINISH
!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_INSTFILES
!insertmacro MUI_LANGUAGE "English"

Section "${NAME}" SecApp
  SectionIn RO
  SetOutPath "$INSTDIR"
  File "/oname=vramkeeper.exe" "${EXE}"
  File "/oname=vramkeeper.ico" "${ICON}"
  WriteUninstaller "$INSTDIR\uninstall.exe"
  CreateShortCut "$SMPROGRAMS\${NAME}.lnk" "$INSTDIR\vramkeeper.exe" "" "$INSTDIR\vramkeeper.ico"
  ; SHCTX is HKLM for all users, HKCU otherwise.
  WriteRegStr SHCTX "${UNINSTKEY}" "DisplayName" "${NAME}"
  WriteRegStr SHCTX "${UNINSTKEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr SHCTX "${UNINSTKEY}" "Publisher" "VRAM Keeper authors"
  WriteRegStr SHCTX "${UNINSTKEY}" "DisplayIcon" "$INSTDIR\vramkeeper.ico"
  WriteRegStr SHCTX "${UNINSTKEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr SHCTX "${UNINSTKEY}" "UninstallString" '"$INSTDIR\uninstall.exe"'
  WriteRegStr SHCTX "${UNINSTKEY}" "QuietUninstallString" '"$INSTDIR\uninstall.exe" /S'
  WriteRegDWORD SHCTX "${UNINSTKEY}" "NoModify" 1
  WriteRegDWORD SHCTX "${UNINSTKEY}" "NoRepair" 1
  ${GetSize} "$INSTDIR" "/S=0K" $0 $1 $2
  WriteRegDWORD SHCTX "${UNINSTKEY}" "EstimatedSize" $0
SectionEnd

Section "Start at login (in the tray)" SecAutostart
  ; Per user: the Run key of whoever installs, as the Settings tab does.
  WriteRegStr HKCU "${RUNKEY}" "${RUNVALUE}" '"$INSTDIR\vramkeeper.exe" --hidden'
SectionEnd

Var AllUsers

Function .onInit
  ${IfNot} ${RunningX64}
    MessageBox MB_OK|MB_ICONSTOP "${NAME} needs 64-bit Windows." /SD IDOK
    Abort
  ${EndIf}
  SetRegView 64
  ${GetParameters} $R0
  ClearErrors
  ${GetOptions} $R0 "/ALLUSERS" $R1
  ${IfNot} ${Errors}
    UserInfo::GetAccountType
    Pop $R2
    ${If} $R2 != "Admin"
      MessageBox MB_OK|MB_ICONSTOP "Installing for all users needs an administrator: run the installer from an elevated prompt, or without /ALLUSERS for yourself." /SD IDOK
      SetErrorLevel 740 ; ERROR_ELEVATION_REQUIRED
      Quit
    ${EndIf}
    StrCpy $AllUsers 1
    SetShellVarContext all
    ${If} $INSTDIR == ""
      StrCpy $INSTDIR "$PROGRAMFILES64\${NAME}"
    ${EndIf}
  ${Else}
    StrCpy $AllUsers 0
    SetShellVarContext current
    ${If} $INSTDIR == ""
      StrCpy $INSTDIR "$LOCALAPPDATA\Programs\${NAME}"
    ${EndIf}
  ${EndIf}
  ClearErrors
  ${GetOptions} $R0 "/NOAUTOSTART" $R1
  ${IfNot} ${Errors}
    SectionSetFlags ${SecAutostart} 0
  ${EndIf}
FunctionEnd

Function un.onInit
  SetRegView 64
  ; Installed for all users when HKLM names this folder.
  ReadRegStr $R0 HKLM "${UNINSTKEY}" "InstallLocation"
  ${If} $R0 == $INSTDIR
    SetShellVarContext all
  ${Else}
    SetShellVarContext current
  ${EndIf}
FunctionEnd

Section "Uninstall"
  ; The tray may run: ask it to close (its window gets WM_CLOSE), then go on.
  nsExec::Exec 'taskkill /IM vramkeeper.exe'
  Pop $0
  Sleep 1000
  DeleteRegValue HKCU "${RUNKEY}" "${RUNVALUE}"
  Delete "$SMPROGRAMS\${NAME}.lnk"
  Delete /REBOOTOK "$INSTDIR\vramkeeper.exe"
  Delete "$INSTDIR\vramkeeper.ico"
  Delete "$INSTDIR\uninstall.exe"
  RMDir /REBOOTOK "$INSTDIR"
  DeleteRegKey SHCTX "${UNINSTKEY}"
  ; Settings (%APPDATA%\vramkeeper) and state (%LOCALAPPDATA%\vramkeeper)
  ; stay: a reinstall picks them up.
SectionEnd
